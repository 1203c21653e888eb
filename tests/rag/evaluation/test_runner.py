"""run_modes on the demo knowledge base: per-question ranks are the searches' own ranks; progress is reported."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.encoder import load_encoder
from rag.errors import InvalidInputError
from rag.evaluation import documents_run, evaluate_questions, load_beir_folder, run_modes
from rag.evaluation.modes import FUSION_OF, MODES, RERANK_MODES, available_modes, unavailable_reason
from rag.retrieval import HybridRetriever
from tests.rag.test_encoder_backends import minilm_settings

QUESTIONS = {
    "sync": "How does the sync engine resolve conflicts?",
    "remote": "How many days per week can I work remotely?",
    "leave": "年假有多少天？",
}
DEPTH = 10


def chunk_ids(retriever: HybridRetriever, query: str, mode: str, top_k: int = DEPTH) -> list[str]:
    if mode in RERANK_MODES:
        found = retriever.search(query, top_k=top_k, mode=RERANK_MODES[mode], rerank="cross-encoder", min_score=0.0)
        return [doc.metadata["id"] for doc in found.documents]
    retrieval_mode, colbert = MODES[mode]
    found = retriever.search(query, top_k=top_k, mode=retrieval_mode, colbert=colbert, min_score=0.0,
                             fusion=FUSION_OF.get(mode))
    return [doc.metadata["id"] for doc in found.documents]


def test_per_question_ranks_are_the_searches_own_ranks(make_retriever: Callable[..., HybridRetriever]) -> None:
    retriever = make_retriever()
    modes = available_modes(retriever.encoder)
    assert modes == ["dense", "sparse", "hybrid", "hybrid+rrf", "hybrid+colbert"]
    dense = {qid: chunk_ids(retriever, text, "dense") for qid, text in QUESTIONS.items()}
    deep = chunk_ids(retriever, QUESTIONS["sync"], "dense", top_k=60)
    # sync: the dense 4th and 7th chunks are relevant; remote: the dense 2nd; leave: a chunk no mode finds in 10
    qrels = {
        "sync": {dense["sync"][0]: 0, dense["sync"][3]: 1, dense["sync"][6]: 1},
        "remote": {dense["remote"][1]: 1},
        "leave": {deep[-1]: 1},
    }
    calls: list[tuple[int, int, str]] = []
    results = run_modes(retriever, QUESTIONS, qrels, modes, [1, 5, 10], lambda docs: documents_run(docs, "id"),
                        DEPTH, progress=lambda done, total, mode: calls.append((done, total, mode)))

    assert [r.mode for r in results] == modes and not any(r.unavailable for r in results)
    missed_everywhere = 0
    for result in results:
        by_qid = {q.qid: q for q in result.questions}
        assert list(by_qid) == list(qrels)
        reciprocal = []
        for qid, judged in qrels.items():
            ranked = chunk_ids(retriever, QUESTIONS[qid], result.mode)
            relevant = [c for c, grade in judged.items() if grade > 0]
            expected = next((rank for rank, c in enumerate(ranked, start=1) if c in relevant), None)
            question = by_qid[qid]
            assert question.query == QUESTIONS[qid] and question.relevant == relevant
            assert question.rank == expected, (result.mode, qid)
            assert question.found == (ranked[expected - 1] if expected else None)
            reciprocal.append(1 / expected if expected else 0.0)
        missed_everywhere += by_qid["leave"].missed
        assert result.metrics["mrr@10"] == pytest.approx(sum(reciprocal) / len(reciprocal), abs=1e-9)
    dense_questions = {q.qid: q for q in results[0].questions}
    assert (dense_questions["sync"].rank, dense_questions["remote"].rank) == (4, 2)
    assert missed_everywhere >= 1  # the deep chunk is missed at depth 10 in dense mode at least

    total = len(modes) * len(QUESTIONS)
    assert calls[-1] == (total, total, modes[-1])
    assert [done for done, _, _ in calls] == sorted(done for done, _, _ in calls)
    assert {mode for _, _, mode in calls} == set(modes) and {t for _, t, _ in calls} == {total}


def test_a_dense_only_encoder_serves_only_the_dense_mode() -> None:
    minilm = load_encoder(minilm_settings())  # the real all-MiniLM-L6-v2: no sparse, no ColBERT head
    assert available_modes(minilm) == ["dense"]
    assert unavailable_reason(minilm, "hybrid+rrf") == (
        "needs sparse vectors; embedding.backend sentence-transformers is dense only")


def test_a_beir_folder_is_matched_on_document_ids(
    make_retriever: Callable[..., HybridRetriever], tmp_path: Path
) -> None:
    """Judged documents (not chunks): a question's rank is its first relevant document's place among the
    documents of the search's chunks, each document placed by its best chunk (as `rag eval` ranks a BEIR corpus)."""
    retriever = make_retriever()
    sync_docs = list(dict.fromkeys(
        d.metadata["doc_id"] for d in retriever.search(QUESTIONS["sync"], top_k=40, mode="hybrid",
                                                       min_score=0.0).documents))
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n"
                                                  for qid, text in QUESTIONS.items()), encoding="utf-8")
    lines = ["query-id\tcorpus-id\tscore", f"sync\t{sync_docs[1]}\t1", "leave\tnot-in-the-kb.md\t1", "remote\tx\t0"]
    (folder / "qrels" / "dev.tsv").write_text("q\td\t1\n", encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = load_beir_folder(folder)  # test.tsv before dev.tsv
    assert data.qrels == {"sync": {sync_docs[1]: 1}, "leave": {"not-in-the-kb.md": 1}, "remote": {"x": 0}}

    evaluation = evaluate_questions(retriever, data.queries, data.qrels, [1, 5], key="doc_id",
                                    modes=["hybrid", "dense"])
    hybrid = evaluation.results[0]
    assert [(q.qid, q.rank, q.found) for q in hybrid.questions] == [("sync", 2, sync_docs[1]), ("leave", None, None)]
    assert hybrid.queries == 2 and evaluation.depth == 10  # the question without a relevant document is not run
    assert hybrid.metrics["mrr@10"] == pytest.approx((1 / 2 + 0) / 2)
    assert [(c.metric, c.first, c.second) for c in evaluation.comparisons][:1] == [("recall@1", "hybrid", "dense")]
    assert all(c.verdict == "not significant (2 questions)" for c in evaluation.comparisons)
    with pytest.raises(InvalidInputError, match="has no qrels"):
        load_beir_folder(tmp_path)


def test_the_cross_encoder_modes_rank_as_the_reranked_searches(
    make_retriever: Callable[..., HybridRetriever], tiny_reranker_dir: Path
) -> None:
    retriever = make_retriever(reranker={"model": str(tiny_reranker_dir), "device": "cpu"}, rerank_candidates=8)
    assert "hybrid+rerank" not in available_modes(retriever.encoder)  # asked for by name: they load a second model
    modes = ["hybrid", "hybrid+rerank", "dense+rerank"]
    ranked = {mode: {qid: chunk_ids(retriever, text, mode) for qid, text in QUESTIONS.items()} for mode in modes}
    reranked = {qid: [d.metadata["id"] for d in retriever.search(text, top_k=DEPTH, rerank="cross-encoder",
                                                                  min_score=0.0).documents]
                for qid, text in QUESTIONS.items()}
    assert ranked["hybrid+rerank"] == reranked and ranked["hybrid+rerank"] != ranked["hybrid"]
    qrels = {qid: {ids[2]: 1} for qid, ids in ranked["hybrid+rerank"].items()}  # each question's 3rd reranked chunk
    results = run_modes(retriever, QUESTIONS, qrels, modes, [1, 5, 10], lambda docs: documents_run(docs, "id"), DEPTH)
    by_mode = {r.mode: r for r in results}
    assert all(q.rank == 3 for q in by_mode["hybrid+rerank"].questions)
    for mode in ("hybrid", "dense+rerank"):
        for question in by_mode[mode].questions:
            found = ranked[mode][question.qid]
            assert question.rank == (found.index(question.relevant[0]) + 1 if question.relevant[0] in found else None)
    minilm = load_encoder(minilm_settings())
    assert unavailable_reason(minilm, "dense+rerank") == ""
    assert unavailable_reason(minilm, "hybrid+rerank").startswith("needs sparse vectors")
