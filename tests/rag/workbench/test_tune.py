"""Fusion weights learned from judgments, where the answer is known: part codes that only the sparse score finds
(the tiny model's dense vectors barely separate them), and marks that follow the dense score instead."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from ingest import IngestPipeline
from rag.config import RetrievalSettings, Settings
from rag.encoder import Encoder
from rag.errors import InvalidInputError
from rag.evaluation import evaluate_run, metric_names
from rag.rerank import load_reranker
from rag.retrieval import HybridRetriever
from rag.retrieval.retriever import OUTPUT_FIELDS
from rag.retrieval.scores import dense_scores, lexical_score
from rag.store import MilvusStore
from rag.store.schema import decode_sparse
from rag.workbench.candidate_pool import CandidatePool
from rag.workbench.tune import FusionChoice, apply_fusion, folds_of, grid, tune
from tests.support.parts_kb import PARTS, write_parts

KB = "parts"
START = RetrievalSettings().weights  # dense 1.0, sparse 0.3


@pytest.fixture(scope="module")
def parts(encoder: Encoder, make_settings: Callable[..., Settings],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MilvusStore, dict[str, str]]]:
    """tests.support.parts_kb ingested: the store and part code -> chunk id."""
    folder = tmp_path_factory.mktemp("parts")
    docs = folder / "docs"
    files = write_parts(docs)
    settings = make_settings(folder)
    store = MilvusStore(settings.milvus)
    report = IngestPipeline(settings, encoder, store).run([docs], kb=KB)
    assert not report.failed and report.chunks_written == PARTS
    rows = store.open(KB).rows("", ["id", "source"])
    by_source = {Path(row["source"]).name: row["id"] for row in rows}
    yield store, {code: by_source[name] for code, name in files.items()}
    store.close()


@pytest.fixture
def retriever(encoder: Encoder, parts: tuple[MilvusStore, dict[str, str]]) -> HybridRetriever:
    return HybridRetriever.from_store(encoder, parts[0], KB, RetrievalSettings())


def lexical_qrels(chunk_of: dict[str, str]) -> dict[str, dict[str, int]]:
    """"part CODE" -> the chunk holding the code."""
    return {f"part {code}": {chunk_id: 1} for code, chunk_id in chunk_of.items()}


def exact_ranks(retriever: HybridRetriever, query: str) -> dict[str, list[str]]:
    """Every chunk of the knowledge base ordered by its exact dense and by its exact sparse score."""
    rows = retriever.knowledge_base.rows("", OUTPUT_FIELDS)
    q = retriever.encoder.encode([query])
    dense = dense_scores(q.dense[0], np.asarray([r["dense"] for r in rows], np.float32)).tolist()
    sparse = [lexical_score(q.sparse[0], decode_sparse(r["sparse"])) for r in rows]
    return {name: [r["id"] for _, r in sorted(zip(values, rows, strict=True), key=lambda p: (-p[0], p[1]["id"]))]
            for name, values in (("dense", dense), ("sparse", sparse))}


def sparse_share(choice: FusionChoice) -> float:
    """The sparse weight relative to dense (only the ratio changes the order); rrf counts as no weight."""
    assert choice.fusion == "weighted" and choice.mode == "hybrid"
    return choice.weights["sparse"] / (choice.weights["dense"] or 1e-9)


def test_codes_only_the_sparse_score_finds_raise_the_sparse_weight_and_held_out_ndcg(
    retriever: HybridRetriever, parts: tuple[MilvusStore, dict[str, str]]
) -> None:
    report = tune(retriever, lexical_qrels(parts[1]), folds=5)
    assert report.questions == PARTS and len(report.folds) == 5
    assert sparse_share(report.chosen) > START.sparse / START.dense and report.chosen == report.learned
    assert report.changed and not report.notes  # 40 questions, every pool complete
    assert report.held_out_after["ndcg@10"] > report.held_out_before["ndcg@10"]
    # Each fold learned without its own questions, and most folds found the same direction.
    assert sum(sparse_share(f.learned) > START.sparse for f in report.folds if f.learned.fusion == "weighted") >= 3
    held_out = sorted(q for fold in report.folds for q in fold.questions)
    assert held_out == sorted(lexical_qrels(parts[1]))


def test_marks_that_follow_the_dense_score_do_not_raise_the_sparse_weight(
    retriever: HybridRetriever, parts: tuple[MilvusStore, dict[str, str]]
) -> None:
    qrels = {}
    for code in parts[1]:
        query = f"part {code}"
        ranks = exact_ranks(retriever, query)
        top = ranks["dense"][0]
        if ranks["sparse"].index(top) > 0:  # dense ranks it first, sparse does not
            qrels[query] = {top: 1}
    assert len(qrels) >= 20
    report = tune(retriever, qrels, folds=5)
    for choice in (report.learned, report.chosen):
        assert choice.fusion == "rrf" or sparse_share(choice) <= START.sparse / START.dense
    assert report.held_out_after["ndcg@10"] >= report.held_out_before["ndcg@10"]
    assert report.all_after["ndcg@10"] > report.all_before["ndcg@10"]  # dense alone finds them all first


def test_tuning_searches_milvus_once_per_question(
    retriever: HybridRetriever, parts: tuple[MilvusStore, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    searches: list[str] = []
    real_search = retriever.knowledge_base.search

    def counted(field: str, *args: object, **kwargs: object) -> list[dict[str, object]]:
        searches.append(field)
        return real_search(field, *args, **kwargs)

    monkeypatch.setattr(retriever.knowledge_base, "search", counted)
    qrels = lexical_qrels(parts[1])
    steps: list[tuple[str, int, int]] = []
    report = tune(retriever, qrels, folds=4, progress=lambda *step: steps.append(step))
    assert report.tried > 10  # many fusions compared ...
    assert sorted(searches) == sorted(["dense", "sparse"] * len(qrels))  # ... on one dense + one sparse search each
    assert steps == [("retrieving", n, len(qrels)) for n in range(1, len(qrels) + 1)] + [
        ("cross-validating", n, 4) for n in range(1, 5)]


def test_marks_that_no_fusion_explains_keep_the_current_fusion(
    retriever: HybridRetriever, parts: tuple[MilvusStore, dict[str, str]]
) -> None:
    """Marks on chunks chosen at random: what is learned on some questions does not hold on the others."""
    rng = random.Random(7)
    chunks = sorted(parts[1].values())
    qrels = {f"part {code}": {rng.choice(chunks): 1} for code in parts[1]}
    report = tune(retriever, qrels, folds=5)
    assert report.held_out_after["ndcg@10"] <= report.held_out_before["ndcg@10"]
    assert report.chosen == report.start and not report.changed
    assert report.retrieval_changes() == {"fusion": "weighted", "weights": START.model_dump()}
    assert not report.learned.same(report.start)  # it learned something, and it is not recommended
    assert any("did not raise the held-out" in note for note in report.notes)


@pytest.mark.parametrize("current", [{}, {"candidate_factor": 1}, {"candidate_factor": 1, "fusion": "rrf"},
                                     {"candidate_factor": 1, "mode": "dense"}])
def test_the_replayed_figures_are_those_of_real_retrievals(
    encoder: Encoder, parts: tuple[MilvusStore, dict[str, str]], current: dict[str, object]
) -> None:
    """Before = `rag eval` with the current settings; after = a real search with the learned fusion applied.

    With candidate_factor 1 the candidate lists (10 chunks) are shorter than the knowledge base (40)."""
    retriever = HybridRetriever.from_store(encoder, parts[0], KB, RetrievalSettings(**current))
    qrels = dict(list(lexical_qrels(parts[1]).items())[:12])
    report = tune(retriever, qrels, folds=3, ks=(1, 5))
    names = metric_names([1, 5])
    for settings, expected in ((retriever.settings, report.all_before),
                               (apply_fusion(retriever.settings, report.learned), report.all_after)):
        run = {q: {d.metadata["id"]: d.metadata["scores"]["final"] for d in
                   retriever.model_copy(update={"settings": settings}).search(q, top_k=report.depth,
                                                                              min_score=0.0).documents}
               for q in qrels}
        measured = evaluate_run(qrels, run, [1, 5])
        assert {n: round(expected[n], 9) for n in names} == {n: round(measured[n], 9) for n in names}


def test_with_colbert_reranking_the_colbert_weight_is_tuned_and_replayed_exactly(
    encoder: Encoder, parts: tuple[MilvusStore, dict[str, str]]
) -> None:
    settings = RetrievalSettings(colbert_rerank=True, rerank_candidates=8)
    retriever = HybridRetriever.from_store(encoder, parts[0], KB, settings)
    qrels = dict(list(lexical_qrels(parts[1]).items())[:6])
    report = tune(retriever, qrels, folds=2, ks=(1, 5))
    assert {c.weights["colbert"] for c in grid(report.start)} > {settings.weights.colbert}
    assert "colbert" in report.learned.describe()
    chosen = apply_fusion(settings, report.learned)
    run = {q: {d.metadata["id"]: d.metadata["scores"]["final"] for d in retriever.model_copy(
        update={"settings": chosen}).search(q, top_k=report.depth, min_score=0.0).documents} for q in qrels}
    assert evaluate_run(qrels, run, [1, 5])["ndcg@10"] == pytest.approx(report.all_after["ndcg@10"], abs=1e-9)


@pytest.mark.parametrize("current", [{}, {"fusion": "rrf"}, {"mode": "dense", "candidate_factor": 1}])
def test_with_the_cross_encoder_every_fusion_replays_the_real_search_and_each_pair_is_scored_once(
    encoder: Encoder, parts: tuple[MilvusStore, dict[str, str]], settings: Settings, current: dict[str, object]
) -> None:
    """The tiny bge-reranker-format model reranks the best 8 of each search; the grid tunes the rerank weight."""
    reranker = {**settings.retrieval.reranker.model_dump(), "batch_size": 6}  # an instance of this test's own
    cfg = RetrievalSettings(rerank="cross-encoder", rerank_candidates=8, reranker=reranker, **current)
    retriever = HybridRetriever.from_store(encoder, parts[0], KB, cfg)
    qrels = dict(list(lexical_qrels(parts[1]).items())[:6])
    report = tune(retriever, qrels, folds=2, ks=(1, 5))
    assert report.start.rerank and "rerank" in report.start.describe() + str(report.start.weights)
    choices = grid(report.start)
    assert {c.weights["rerank"] for c in choices if c.fusion == "weighted"} >= {0.0, 1.0, 5.0}
    names = metric_names([1, 5])

    def measured(choice: FusionChoice) -> tuple[dict[str, list[str]], dict[str, float]]:
        searcher = retriever.model_copy(update={"settings": apply_fusion(cfg, choice)})
        found = {q: searcher.search(q, top_k=report.depth, min_score=0.0).documents for q in qrels}
        assert all("rerank" in docs[0].metadata["scores"] for docs in found.values())  # the search reranked
        ranked = {q: [d.metadata["id"] for d in docs] for q, docs in found.items()}
        # By rank, not by final: a chunk after the rerank set may have a higher final than a reranked one.
        run = {q: {chunk_id: float(len(ids) - i) for i, chunk_id in enumerate(ids)} for q, ids in ranked.items()}
        return ranked, evaluate_run(qrels, run, [1, 5])

    for choice, expected in ((report.start, report.all_before), (report.learned, report.all_after)):
        assert {n: round(expected[n], 9) for n in names} == {n: round(measured(choice)[1][n], 9) for n in names}

    loaded = load_reranker(cfg.reranker)
    before = loaded.pairs_scored
    pool = CandidatePool.collect(retriever, sorted(qrels), report.depth, reranker=loaded)
    assert loaded.pairs_scored == before  # collecting the pool searches without the cross-encoder
    pool.score_heads([c.rule(cfg) for c in choices])
    assert loaded.pairs_scored - before == pool.pairs_scored == report.rerank_pairs
    assert 8 * len(qrels) <= pool.pairs_scored < 8 * len(qrels) * len(choices)  # each pair once, heads overlap
    rerank_only = next(c for c in choices if c.weights["dense"] == c.weights["sparse"] == 0.0)
    for choice in (choices[1], rerank_only, *choices[2::9]):  # rrf, the cross-encoder alone, a spread of weights
        replayed = {q: pool.ranking(q, choice.rule(cfg)) for q in qrels}
        assert replayed == measured(choice)[0], choice.describe()
    assert pool.pairs_scored == report.rerank_pairs  # every replay found its pairs already scored


def test_folds_are_deterministic_and_hold_each_question_once() -> None:
    questions = [f"q{i}" for i in range(7)]
    folds = folds_of(questions, 5, seed=3)
    assert folds == folds_of(list(reversed(questions)), 5, seed=3)
    assert len(folds) == 5 and sorted(q for fold in folds for q in fold) == sorted(questions)
    assert len(folds_of(questions[:3], 5)) == 3  # k = min(folds, questions)


def test_too_few_questions_with_a_relevant_mark_are_refused(retriever: HybridRetriever,
                                                            parts: tuple[MilvusStore, dict[str, str]]) -> None:
    code, chunk_id = next(iter(parts[1].items()))
    with pytest.raises(InvalidInputError, match="at least 2 questions"):
        tune(retriever, {f"part {code}": {chunk_id: 1}, "nothing relevant": {chunk_id: 0}})
    with pytest.raises(InvalidInputError, match="folds"):
        tune(retriever, lexical_qrels(parts[1]), folds=1)


def test_questions_without_a_relevant_mark_are_left_out(retriever: HybridRetriever,
                                                        parts: tuple[MilvusStore, dict[str, str]]) -> None:
    qrels = dict(list(lexical_qrels(parts[1]).items())[:4])
    report = tune(retriever, {**qrels, "all marked not relevant": {next(iter(parts[1].values())): 0}}, folds=2)
    assert (report.questions, report.skipped) == (4, 1)
    data = report.to_dict()
    assert data["learned_on"] == "all questions" and len(data["folds"]) == 2
    assert set(data["held_out"]["before"]) == set(metric_names(report.ks))
    assert any("not significant" in note for note in report.notes)  # 4 questions


def test_the_grid_starts_from_the_current_fusion_and_tries_each_ranking_once() -> None:
    start = FusionChoice("hybrid", "weighted", {"dense": 2.0, "sparse": 0.6, "colbert": 1.0})
    choices = grid(start)
    assert choices[0] is start and choices[1].fusion == "rrf"
    assert not any(c.same(start) for c in choices[1:])  # dense 1, sparse 0.3 ranks as dense 2, sparse 0.6
    assert len({c.describe() for c in choices}) == len(choices)
    assert {c.weights["sparse"] for c in choices if c.weights["dense"] == 1.0} >= {0.0, 1.0, 10.0}
    assert FusionChoice("hybrid", "weighted", {"dense": 0.0, "sparse": 1.0, "colbert": 1.0}).same(
        FusionChoice("hybrid", "weighted", {"dense": 0.0, "sparse": 2.0, "colbert": 5.0}))  # colbert off: unused
