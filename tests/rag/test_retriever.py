"""Hybrid retrieval on the demo knowledge base: every score equals FlagEmbedding's, ordering, filters, min_score.

The knowledge base is examples/kb ingested with the shared tiny bge-m3-format model into embedded milvus-lite; its
sparse head is centred so that most tokens get a weight, and the ``m3`` fixture checks the queries' sparse vectors
are non-empty, so sparse scores are never trivially 0.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda
from pydantic import ValidationError
from rich.console import Console

from cli.render import results_table
from ingest.pipeline import IngestPipeline
from rag.config import FUSIONS, MODES, EmbeddingSettings, RetrievalSettings, Settings
from rag.encoder import BGEM3Encoder, Encoder
from rag.errors import InvalidInputError, ModelMismatchError
from rag.retrieval import HybridRetriever, RetrievalResult, Scores
from rag.store import MilvusStore
from rag.testing.tiny_bge_m3 import build_bge_m3_like
from tests.conftest import EXAMPLES, example_texts
from ui.markup import formula_lines

KB = "demo"
QUERIES = [
    "员工每年享有多少天带薪年假？",
    "How does the sync engine resolve conflicts?",
    "Are my notes encrypted?",
    "remote work policy days per week",
    "入职第一周需要做什么",
]


@pytest.fixture(scope="module")
def m3(encoder: Encoder) -> Encoder:
    assert all(encoder.encode(QUERIES).sparse), "the test model must give queries non-empty sparse weights"
    return encoder


@pytest.fixture(scope="module")
def retriever(make_retriever: Callable[..., HybridRetriever]) -> HybridRetriever:
    return make_retriever()


def reference(m3: Encoder, query: str, texts: list[str]) -> list[dict[str, float]]:
    """FlagEmbedding's own scores of ``query`` against each text."""
    flag = m3.flag_model  # type: ignore[attr-defined]
    dense = flag.compute_score([(query, t) for t in texts], max_query_length=512, max_passage_length=512)["dense"]
    kw = {"max_length": 512, "return_dense": False, "return_sparse": True, "return_colbert_vecs": True}
    q = flag.encode([query], **kw)
    p = flag.encode(texts, **kw)
    return [
        {
            "dense": float(dense[i]),
            "sparse": float(flag.compute_lexical_matching_score(q["lexical_weights"][0], p["lexical_weights"][i])),
            "colbert": float(flag.colbert_score(q["colbert_vecs"][0], p["colbert_vecs"][i])),
        }
        for i in range(len(texts))
    ]


def assert_exact(m3: Encoder, result: RetrievalResult, *, ordered: bool = True) -> None:
    """Every returned chunk's scores equal FlagEmbedding's and the formulas; ranks and order are consistent."""
    docs = result.documents
    refs = reference(m3, result.query, [d.page_content for d in docs])
    w = result.weights
    for rank, (doc, ref) in enumerate(zip(docs, refs, strict=True), start=1):
        s = doc.metadata["scores"]
        assert doc.metadata["rank"] == rank
        assert s["weights"] == w
        assert s["dense"] == pytest.approx(ref["dense"], abs=1e-5)
        assert s["sparse"] == pytest.approx(ref["sparse"], abs=1e-5)
        parts = {"dense": s["dense"], "sparse": s["sparse"]}
        if s["colbert"] is not None:
            assert s["colbert"] == pytest.approx(ref["colbert"], abs=1e-5)
            parts["colbert"] = s["colbert"]
        hybrid = sum(w[k] * v for k, v in parts.items()) / sum(w[k] for k in parts)
        assert s["hybrid"] == pytest.approx(hybrid, abs=1e-9)
        ranks = [s["dense_rank"], s["sparse_rank"], s["colbert_rank"]]
        assert s["rrf"] == pytest.approx(sum(1 / (60 + r) for r in ranks if r is not None), abs=1e-12)
        assert sum(t["contribution"] for t in doc.metadata["matched_terms"]) == pytest.approx(s["sparse"], abs=1e-9)
    finals = [d.metadata["scores"]["final"] for d in docs]
    assert finals == sorted(finals, reverse=True) or not ordered


def test_every_score_equals_flagembedding(m3: Encoder, retriever: HybridRetriever) -> None:
    for query in QUERIES:
        result = retriever.search(query)
        assert len(result.documents) == 5
        assert result.formula == "final = hybrid = (1.0 x dense + 0.3 x sparse) / 1.3"
        assert_exact(m3, result)
        for doc in result.documents:
            s = doc.metadata["scores"]
            assert s["final"] == s["hybrid"] and s["colbert"] is None
            assert (s["mode"], s["fusion"]) == ("hybrid", "weighted")


def test_document_contract(retriever: HybridRetriever, demo: tuple[Settings, MilvusStore]) -> None:
    docs = retriever.search("Inkwell sync engine conflicts", top_k=30).documents
    meta = docs[0].metadata
    assert len(docs) == 30
    assert set(meta) == {"id", "doc_id", "source", "chunk_index", "title", "page", "heading", "rank", "kb", "scores",
                         "matched_terms", "metadata"}
    assert meta["kb"] == KB and docs[0].id == meta["id"]
    assert {"dense", "sparse", "colbert", "hybrid", "rrf", "dense_rank", "sparse_rank", "final", "mode", "fusion",
            "weights"} <= set(meta["scores"])
    assert meta["metadata"]["file_type"] == meta["source"].rsplit(".", 1)[1]
    pdf = retriever.search("sync engine", top_k=50, filters={"source": "tech-note-sync.pdf"}).documents
    stored = demo[1].open(KB).rows('source == "tech-note-sync.pdf"', ["id"])
    assert len(pdf) == len(stored) and {d.metadata["page"] for d in pdf} == {1, 2, 3}
    faq = retriever.search("notebook", top_k=50, filters={"source": "product-faq.md"}).documents
    assert all(d.metadata["heading"].startswith("Inkwell Product FAQ") for d in faq)
    assert all(d.metadata["page"] is None for d in faq)
    for term in (t for d in docs for t in d.metadata["matched_terms"]):
        assert set(term) == {"term", "token_id", "query_weight", "chunk_weight", "contribution"} and term["term"]


@pytest.mark.parametrize("rerank", ["none", "colbert"])
def test_exact_search_reads_text_once_for_the_chunks_it_returns(
    m3: Encoder, make_retriever: Callable[..., HybridRetriever], monkeypatch: pytest.MonkeyPatch, rerank: str
) -> None:
    """The in-process exact search holds no text: one store read per search fetches text and title, only for the
    chunks returned (with reranking, the reranked head); the documents equal those of Milvus' own search."""
    exact = make_retriever(rerank=rerank, rerank_candidates=8)
    milvus = make_retriever(rerank=rerank, rerank_candidates=8, exact_max_chunks=0)
    client = exact.knowledge_base._client
    real_query = client.query
    text_reads: list[list[str]] = []

    def query(*args: Any, **kwargs: Any) -> Any:
        if "text" in (kwargs.get("output_fields") or ()):
            text_reads.append(list(kwargs.get("ids") or []))
        return real_query(*args, **kwargs)

    monkeypatch.setattr(client, "query", query)
    for text in QUERIES:
        theirs = milvus.search(text)
        assert text_reads == []  # Milvus' search returns the text with the hits
        ours = exact.search(text)
        returned = [d.metadata["id"] for d in ours.documents]
        assert len(text_reads) == 1 and set(returned) <= set(text_reads[0])
        assert len(text_reads[0]) == (len(returned) if rerank == "none" else min(8, ours.candidates))
        text_reads.clear()
        assert [(d.page_content, d.metadata) for d in ours.documents] \
            == [(d.page_content, d.metadata) for d in theirs.documents]
        assert_exact(m3, ours)


def test_colbert_rerank_exact_and_ordered(m3: Encoder, make_retriever: Callable[..., HybridRetriever]) -> None:
    retriever = make_retriever(colbert_rerank=True, rerank_candidates=3)
    for query in QUERIES[:3]:
        result = retriever.search(query, top_k=6)
        assert result.formula == "final = hybrid = (1.0 x dense + 0.3 x sparse + 1.0 x colbert) / 2.3"
        docs = result.documents
        assert [d.metadata["scores"]["colbert"] is not None for d in docs] == [True] * 3 + [False] * 3
        assert_exact(m3, result, ordered=False)  # colbert included: compared with FlagEmbedding's colbert_score
        head = [d.metadata["scores"]["final"] for d in docs[:3]]
        tail = [d.metadata["scores"]["final"] for d in docs[3:]]
        assert head == sorted(head, reverse=True) and tail == sorted(tail, reverse=True)
        assert sorted(d.metadata["scores"]["colbert_rank"] for d in docs[:3]) == [1, 2, 3]
    dense_only = retriever.search(QUERIES[0], mode="dense", top_k=3)
    assert dense_only.formula == "final = dense+colbert = (1.0 x dense + 1.0 x colbert) / 2.0"
    for doc in dense_only.documents:
        s = doc.metadata["scores"]
        assert s["final"] == pytest.approx((s["dense"] + s["colbert"]) / 2)


def test_exact_chunk_text_comes_first_with_dense_one(retriever: HybridRetriever,
                                                    demo: tuple[Settings, MilvusStore]) -> None:
    rows = demo[1].open(KB).rows("chunk_index == 1", ["id", "text", "source"], limit=8)
    assert len(rows) >= 5
    for row in rows:
        first = retriever.search(row["text"], mode="dense").documents[0]
        assert first.metadata["id"] == row["id"], row["source"]
        assert first.metadata["scores"]["dense"] == pytest.approx(1.0, abs=1e-5)
        assert first.page_content == row["text"]
        # hybrid: the chunk is found with dense 1.0; a chunk can only rank above it by a larger sparse score
        docs = retriever.search(row["text"], mode="hybrid").documents
        ids = [d.metadata["id"] for d in docs]
        assert row["id"] in ids, row["source"]
        own = docs[ids.index(row["id"])].metadata["scores"]
        assert own["dense"] == pytest.approx(1.0, abs=1e-5)
        for above in docs[: ids.index(row["id"])]:
            assert above.metadata["scores"]["sparse"] > own["sparse"]


def test_chunks_found_by_one_search_only_get_exact_scores(m3: Encoder,
                                                          make_retriever: Callable[..., HybridRetriever]) -> None:
    # top_k 4 with candidate_factor 1: each search returns only 4 chunks, so the union of the two short lists
    # holds chunks that only one of the searches returned.
    retriever = make_retriever(top_k=4, candidate_factor=1)
    only_sparse, only_dense = 0, 0
    for query in QUERIES:
        result = retriever.search(query)
        assert result.dense_hits == 4 and result.sparse_hits <= 4
        assert_exact(m3, result)
        for doc in result.documents:
            s = doc.metadata["scores"]
            only_sparse += s["dense_rank"] is None
            only_dense += s["sparse_rank"] is None
            if s["dense_rank"] is None:
                assert s["sparse_rank"] is not None and s["rrf"] == pytest.approx(1 / (60 + s["sparse_rank"]))
    assert only_sparse > 0 and only_dense > 0


def test_min_score_is_inclusive(retriever: HybridRetriever) -> None:
    for mode, fusion in (("hybrid", "weighted"), ("dense", "weighted"), ("sparse", "weighted"), ("hybrid", "rrf")):
        full = retriever.search(QUERIES[0], mode=mode, fusion=fusion, top_k=8, min_score=0)
        finals = [d.metadata["scores"]["final"] for d in full.documents]
        distinct = sorted(set(finals), reverse=True)
        assert len(distinct) >= 3
        at_third = retriever.search(QUERIES[0], mode=mode, fusion=fusion, top_k=8, min_score=distinct[2])
        kept = [d.metadata["id"] for d in full.documents if d.metadata["scores"]["final"] >= distinct[2]]
        assert [d.metadata["id"] for d in at_third.documents] == kept
        assert at_third.documents[-1].metadata["scores"]["final"] == distinct[2]  # equality is kept
        assert at_third.below_min_score == at_third.candidates - len(kept)
        top = retriever.search(QUERIES[0], mode=mode, fusion=fusion, min_score=distinct[0])
        assert [d.metadata["scores"]["final"] for d in top.documents] == [f for f in finals if f == distinct[0]]
        assert retriever.search(QUERIES[0], mode=mode, fusion=fusion, min_score=finals[0] + 1e-9).documents == []
    keep_all = retriever.search(QUERIES[1], mode="dense", top_k=200, min_score=0.0)
    assert len(keep_all.documents) == keep_all.candidates  # 0 keeps every candidate, whatever its score


def test_modes_order_by_their_own_score(retriever: HybridRetriever) -> None:
    differs = {"dense/sparse": False, "hybrid/both": False, "rrf/weighted": False}
    for query in QUERIES:
        orders = {}
        for mode, fusion, key in (("dense", "weighted", "dense"), ("sparse", "weighted", "sparse"),
                                  ("hybrid", "weighted", "hybrid"), ("hybrid", "rrf", "rrf")):
            docs = retriever.search(query, mode=mode, fusion=fusion, top_k=8).documents
            values = [d.metadata["scores"][key] for d in docs]
            assert values == sorted(values, reverse=True)
            assert all(d.metadata["scores"]["final"] == d.metadata["scores"][key] for d in docs)
            if mode in ("dense", "sparse"):  # only that search supplied the candidates
                assert all(d.metadata["scores"][f"{mode}_rank"] is not None for d in docs)
            orders[key] = [d.metadata["id"] for d in docs]
        differs["dense/sparse"] |= orders["dense"] != orders["sparse"]
        differs["hybrid/both"] |= orders["hybrid"] not in (orders["dense"], orders["sparse"])
        differs["rrf/weighted"] |= orders["rrf"] != orders["hybrid"]
    assert all(differs.values()), differs
    rrf = retriever.search(QUERIES[0], fusion="rrf")
    assert rrf.formula == "final = rrf = 1/(60 + dense_rank) + 1/(60 + sparse_rank)"


def test_rrf_uses_configured_k(make_retriever: Callable[..., HybridRetriever]) -> None:
    result = make_retriever(rrf_k=10, fusion="rrf").search(QUERIES[3])
    for doc in result.documents:
        s = doc.metadata["scores"]
        expected = sum(1 / (10 + r) for r in (s["dense_rank"], s["sparse_rank"]) if r is not None)
        assert s["rrf"] == pytest.approx(expected) and s["final"] == s["rrf"]


def test_filters(retriever: HybridRetriever) -> None:
    def sources(**filters: Any) -> set[str]:
        return {d.metadata["source"] for d in retriever.search(QUERIES[2], top_k=50, filters=filters).documents}

    assert sources(source="product-faq.md") == {"product-faq.md"}
    assert sources(source_prefix="re") == {"remote-work-policy.html"}
    assert sources(source_prefix="README") == {"README.md"}
    assert sources(source_prefix="_") == set() and sources(source_prefix="%") == set()  # wildcards are literal
    assert sources(source='he said "hi" \\ 文件.md') == set()
    assert sources(metadata={"file_type": "pdf"}) == {"tech-note-sync.pdf"}
    pages = retriever.search(QUERIES[1], top_k=50, filters={"metadata": {"page": 2}}).documents
    assert pages and {d.metadata["page"] for d in pages} == {2}
    both = sources(source_prefix="product", metadata={"file_type": "md"})
    assert both == {"product-faq.md"}
    assert sources(source_prefix="product", metadata={"file_type": "pdf"}) == set()
    with pytest.raises(InvalidInputError, match="unknown filter key"):
        retriever.search("x", filters={"folder": "a"})
    with pytest.raises(InvalidInputError, match="text, numbers or true/false"):
        retriever.search("x", filters={"metadata": {"page": [1, 2]}})


def test_query_without_sparse_tokens(m3: Encoder, retriever: HybridRetriever) -> None:
    assert m3.encode(["<unk>"]).sparse == [{}]
    assert retriever.search("<unk>", mode="sparse").documents == []
    hybrid = retriever.search("<unk>")
    assert hybrid.sparse_hits == 0 and len(hybrid.documents) == 5
    assert all(d.metadata["scores"]["sparse"] == 0.0 and d.metadata["matched_terms"] == [] for d in hybrid.documents)


def test_query_cache_and_timings(m3: Encoder, make_retriever: Callable[..., HybridRetriever]) -> None:
    retriever = make_retriever()
    first = retriever.search("年假 cache test")
    before = m3.texts_encoded
    second = retriever.search("年假 cache test", mode="dense")
    assert m3.texts_encoded == before and second.cached_query and not first.cached_query
    t = second.timings
    assert min(t.encode_ms, t.milvus_ms, t.rescoring_ms) >= 0 and t.rerank_ms == 0
    assert t.total_ms >= t.encode_ms + t.milvus_ms + t.rescoring_ms
    data = json.loads(json.dumps(first.to_dict()))
    assert data["documents"][0]["text"] == first.documents[0].page_content and data["timings"]["total_ms"] > 0


def test_langchain_retriever_interface(retriever: HybridRetriever) -> None:
    docs = retriever.invoke(QUERIES[1])
    assert all(isinstance(d, Document) for d in docs)
    assert [d.metadata["id"] for d in docs] == [d.metadata["id"] for d in retriever.search(QUERIES[1]).documents]
    assert len(retriever.invoke(QUERIES[1], top_k=2)) == 2
    chain = retriever | RunnableLambda(lambda ds: [d.metadata["source"] for d in ds])
    assert len(chain.invoke(QUERIES[0])) == 5
    assert [len(x) for x in retriever.batch(QUERIES[:2])] == [5, 5]


def test_bad_input_is_a_clear_error(retriever: HybridRetriever) -> None:
    for query in ("", "   \n"):
        with pytest.raises(InvalidInputError, match="query is empty"):
            retriever.search(query)
    with pytest.raises(InvalidInputError, match="mode must be one of"):
        retriever.search("x", mode="bm25")
    with pytest.raises(InvalidInputError, match="top_k"):
        retriever.search("x", top_k=0)
    with pytest.raises(InvalidInputError, match="all 0"):
        retriever.search("x", weights={"dense": 0, "sparse": 0})


def test_other_model_is_refused(demo: tuple[Settings, MilvusStore], tmp_path: Path) -> None:
    other = build_bge_m3_like(tmp_path / "other", seed=1, extra_texts=example_texts(), max_length=512)
    encoder = BGEM3Encoder(EmbeddingSettings(model=str(other), device="cpu", max_length=512))
    with pytest.raises(ModelMismatchError, match="fingerprint"):
        HybridRetriever.from_store(encoder, demo[1], KB, RetrievalSettings())


def test_same_results_on_a_milvus_server(m3: Encoder, demo: tuple[Settings, MilvusStore], milvus_server: str,
                                         make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings(tmp_path, embedding={"model": str(m3.model_dir)}, milvus={"uri": milvus_server})
    with MilvusStore(settings.milvus) as server:
        if server.exists("demo_server"):
            server.drop("demo_server")
        IngestPipeline(settings, m3, server).run([EXAMPLES], kb="demo_server")
        remote = HybridRetriever.from_store(m3, server, "demo_server", RetrievalSettings())
        local = HybridRetriever.from_store(m3, demo[1], KB, RetrievalSettings())
        for query in QUERIES[:2]:
            theirs, ours = remote.search(query), local.search(query)
            assert_exact(m3, theirs)
            assert [d.metadata["id"] for d in theirs.documents] == [d.metadata["id"] for d in ours.documents]
            for a, b in zip(theirs.documents, ours.documents, strict=True):
                assert a.metadata["scores"]["hybrid"] == pytest.approx(b.metadata["scores"]["hybrid"], abs=1e-6)
        assert remote.search(QUERIES[2], filters={"source_prefix": "product"}).documents[0].metadata["source"] \
            == "product-faq.md"
        server.drop("demo_server")


EXPECTED_FORMULA = {
    ("dense", False): "final = dense",
    ("dense", True): "final = dense+colbert = (1.0 x dense + 1.0 x colbert) / 2.0",
    ("sparse", False): "final = sparse",
    ("sparse", True): "final = sparse+colbert = (0.3 x sparse + 1.0 x colbert) / 1.3",
    ("hybrid", False): "final = hybrid = (1.0 x dense + 0.3 x sparse) / 1.3",
    ("hybrid", True): "final = hybrid = (1.0 x dense + 0.3 x sparse + 1.0 x colbert) / 2.3",
    ("rrf", False): "final = rrf = 1/(60 + dense_rank) + 1/(60 + sparse_rank)",
    ("rrf", True): "final = rrf = 1/(60 + dense_rank) + 1/(60 + sparse_rank) + 1/(60 + colbert_rank)",
}


def evaluate(formula: str, scores: Scores | None = None) -> float:
    """The right-hand side of ``final = [name =] expression`` as a number, names replaced by the chunk's scores."""
    expression = formula.split(" = ")[-1] if scores is None else formula.split(" = ", 2)[-1]
    values = {} if scores is None else {
        "dense": scores.dense, "sparse": scores.sparse, "colbert": scores.colbert, "dense_rank": scores.ranks.dense,
        "sparse_rank": scores.ranks.sparse, "colbert_rank": scores.ranks.colbert,
    }
    # a list that does not hold the chunk adds nothing to rrf (its rank is None)
    expression = re.sub(r"1/\(\d+ \+ ([a-z]+_rank)\)", lambda m: "0" if values[m.group(1)] is None else m.group(0),
                        expression)
    arithmetic = re.sub(r"[a-z_]+", lambda m: "*" if m.group(0) == "x" else repr(values[m.group(0)]), expression)
    assert re.fullmatch(r"[-0-9.e+*/() ]+", arithmetic), arithmetic
    return float(eval(arithmetic, {"__builtins__": {}}))  # only numbers and + * / ( ), checked above


def table_rows(result: RetrievalResult) -> tuple[str, list[list[str]]]:
    """The CLI table as a user sees it: its whole text and the cells of each chunk's row."""
    console = Console(width=400, record=True, file=io.StringIO())
    console.print(results_table(result))
    text = console.export_text()
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines()
            if line.startswith("│") and line.split("│")[1].strip().isdigit()]
    return text, rows


@pytest.mark.parametrize("colbert", [False, True], ids=["no-colbert", "colbert"])
@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("mode", MODES)
def test_one_rule_retriever_web_formula_and_cli_table_agree(
    mode: str, fusion: str, colbert: bool, make_retriever: Callable[..., HybridRetriever]
) -> None:
    retriever = make_retriever(mode=mode, fusion=fusion, colbert_rerank=colbert, rerank_candidates=3)
    result = retriever.search(QUERIES[1], top_k=6)
    docs = result.documents
    rule = "rrf" if (mode, fusion) == ("hybrid", "rrf") else mode
    assert result.formula == EXPECTED_FORMULA[rule, colbert] and len(docs) == 6
    scores = [Scores.from_metadata(d.metadata) for d in docs]
    finals = [s.final for s in scores]
    reranked = sum(s.colbert is not None for s in scores)
    assert reranked == (3 if colbert else 0)
    for part in (finals[:reranked], finals[reranked:]):  # reranked chunks first, each group by final
        assert part == sorted(part, reverse=True)

    text, rows = table_rows(result)
    assert result.formula in " ".join(text.split())
    assert [row[0] for row in rows] == [str(d.metadata["rank"]) for d in docs]
    assert [row[7] for row in rows] == [f"{f:.4f}" for f in finals]

    for doc, s in zip(docs, scores, strict=True):
        lines = formula_lines(s, retriever.settings.rrf_k)
        # the chunk's own formula: the search's, or without colbert for a chunk outside the rerank set
        assert lines[0] == EXPECTED_FORMULA[rule, s.colbert is not None]
        assert evaluate(lines[0], s) == pytest.approx(s.final, abs=1e-9)
        assert evaluate(lines[-1]) == pytest.approx(s.final, abs=1e-4)  # the numbers shown give the final
        assert lines[-1].endswith(f" = {s.final:.4f}")
        assert doc.metadata["scores"] == s.to_metadata()


def test_k_is_langchains_name_for_top_k(m3: Encoder, demo: tuple[Settings, MilvusStore],
                                        retriever: HybridRetriever) -> None:
    store = demo[1]
    three = HybridRetriever.from_store(m3, store, KB, RetrievalSettings(), k=3)
    assert three.k == 3 and len(three.invoke(QUERIES[0])) == 3
    assert len(three.invoke(QUERIES[0], k=1)) == 1 and len(three.invoke(QUERIES[0], top_k=2)) == 2
    assert len(HybridRetriever.from_store(m3, store, KB, RetrievalSettings(), top_k=2).invoke(QUERIES[0])) == 2
    assert retriever.k == 5 and len(retriever.invoke(QUERIES[0], k=4)) == 4
    with pytest.raises(InvalidInputError, match="give one"):
        retriever.invoke(QUERIES[0], k=2, top_k=3)
    with pytest.raises(InvalidInputError, match="top_k"):
        HybridRetriever.from_store(m3, store, KB, RetrievalSettings(), k=0)


def test_unknown_constructor_argument_is_an_error(m3: Encoder, demo: tuple[Settings, MilvusStore]) -> None:
    for wrong in ({"n_results": 3}, {"search_kwargs": {"k": 3}}, {"mode": "dense"}):
        with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
            HybridRetriever.from_store(m3, demo[1], KB, RetrievalSettings(), **wrong)


def test_per_call_options_follow_the_settings_rules(retriever: HybridRetriever) -> None:
    for options, message in (({"fusion": "max"}, "fusion must be one of 'weighted' or 'rrf', got 'max'"),
                             ({"top_k": 16385}, "top_k: Input should be less than or equal to 16384"),
                             ({"min_score": "high"}, "min_score: Input should be a valid number"),
                             ({"weights": {"dense": -1}}, "weights must be numbers of 0 or more"),
                             ({"mode": "dense", "colbert": True, "weights": {"dense": 0, "colbert": 0}},
                              "weights of dense and colbert are all 0")):
        with pytest.raises(InvalidInputError, match=re.escape(message)):
            retriever.search("x", **options)
    assert retriever.search(QUERIES[0], fusion="rrf", weights={"dense": 0, "sparse": 0}).documents  # rrf: no weights
