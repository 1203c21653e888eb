"""`rag explain` through the real console script: the JSON is the library's explanation, the table is escaped."""

from __future__ import annotations

import json

import pytest

from rag.config import Settings
from rag.encoder import Encoder
from rag.retrieval import HybridRetriever
from rag.store import MilvusStore
from rag.workbench.explain import explain, explain_document
from tests.conftest import run_cli

QUERY = "How does the sync engine order edits? vector clock"


def test_explain_json_equals_the_library_and_names_the_cut(demo: Settings, encoder: Encoder) -> None:
    with MilvusStore(demo.milvus) as store:
        retriever = HybridRetriever.from_store(encoder, store, demo.kb.name, demo.retrieval)
        ranked = retriever.search(QUERY, top_k=8).documents
        seventh = ranked[6].metadata["id"]
        expected = explain(HybridRetriever.from_store(encoder, store, demo.kb.name, demo.retrieval.model_copy(
            update={"top_k": 3})), QUERY, seventh)
    result = run_cli(["explain", QUERY, "--chunk", seventh, "--top-k", "3", "--json"], demo, program="rag")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["chunk_id"] == seventh and printed["lost_at"] == expected.lost_at != "retrieved"
    assert printed["reason"] == expected.reason
    for name in ("dense", "sparse", "hybrid", "final"):
        assert printed["scores"][name] == pytest.approx(getattr(expected.scores, name), abs=1e-6)
    assert printed["dense"]["rank"] == expected.dense.rank and printed["sparse"]["rank"] == expected.sparse.rank
    assert [(f["setting"], f["value"], f["retrieved_rank"], f["works"]) for f in printed["fixes"]] == [
        (f.setting, f.value, f.retrieved_rank, f.works) for f in expected.fixes]
    assert printed["fixes"], "a missed chunk comes with a checked change"

    first = ranked[0].metadata["id"]
    table = run_cli(["explain", QUERY, "--chunk", first], demo, program="rag")
    assert table.returncode == 0, table.stderr
    assert "retrieved at rank 1" in table.stdout and "missing query terms" in table.stdout


def test_explain_an_unknown_chunk_is_one_clear_error(demo: Settings) -> None:
    result = run_cli(["explain", QUERY, "--chunk", "no-such-chunk\x1b[2J"], demo, program="rag")
    assert result.returncode != 0
    assert "no chunk with id" in result.stderr and "\x1b" not in result.stderr


def test_explain_doc_json_explains_every_chunk_of_the_source(demo: Settings, encoder: Encoder) -> None:
    with MilvusStore(demo.milvus) as store:
        retriever = HybridRetriever.from_store(encoder, store, demo.kb.name, demo.retrieval)
        best = retriever.search(QUERY).documents[0]
        expected = explain_document(retriever, QUERY, best.metadata["source"])
    result = run_cli(["explain", QUERY, "--doc", best.metadata["source"], "--json"], demo, program="rag")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert [c["chunk_id"] for c in printed["chunks"]] == [e.chunk_id for e in expected]
    assert [c["lost_at"] for c in printed["chunks"]] == [e.lost_at for e in expected]
    assert printed["chunks"][[e.chunk_id for e in expected].index(best.metadata["id"])]["retrieved_rank"] == 1
    table = run_cli(["explain", QUERY, "--doc", best.metadata["source"]], demo, program="rag")
    assert table.returncode == 0 and "retrieved at rank 1" in table.stdout


@pytest.mark.parametrize("args", [[], ["--chunk", "a", "--doc", "b.md"]])
def test_explain_needs_exactly_one_of_chunk_and_doc(settings: Settings, args: list[str]) -> None:
    result = run_cli(["explain", QUERY, *args], settings, program="rag")
    assert result.returncode == 2 and "give either --chunk ID or --doc SOURCE" in result.stderr


def test_explain_shows_the_fused_ranks_and_the_checked_rrf_fixes(demo: Settings, encoder: Encoder) -> None:
    """With --fusion rrf, a chunk ranked below top_k gets its ranks among all chunks and checked fusion changes."""
    rrf = demo.retrieval.model_copy(update={"fusion": "rrf", "top_k": 2})
    with MilvusStore(demo.milvus) as store:
        retriever = HybridRetriever.from_store(encoder, store, demo.kb.name, rrf)
        pool = retriever.search(QUERY, top_k=rrf.candidate_limit).documents  # the same 8 candidates, all of them
        explained = [explain(retriever, QUERY, d.metadata["id"]) for d in pool[2:]]
    expected = next(e for e in explained if {f.setting for f in e.fixes} & {"fusion", "rrf_k", "weights.sparse"})
    assert expected.lost_at == "top_k"
    args = ["explain", QUERY, "--chunk", expected.chunk_id, "--top-k", "2", "--fusion", "rrf"]
    printed = json.loads(run_cli([*args, "--json"], demo, program="rag").stdout)
    for name in ("hybrid_rank", "rrf_rank", "final_rank"):
        assert printed[name]["rank"] == getattr(expected, name).rank and printed[name]["exact"] is True
    assert [(f["setting"], f["value"], f["also"], f["works"]) for f in printed["fixes"]] == [
        (f.setting, f.value, f.also, f.works) for f in expected.fixes]
    table = run_cli(args, demo, program="rag")
    assert table.returncode == 0, table.stderr
    assert f"rank {expected.final_rank.rank}" in table.stdout and "as if the candidate lists held every chunk" in \
        table.stdout
    for fix in expected.fixes:
        assert f"try {fix.describe()}: checked by searching again" in table.stdout


def test_explain_names_the_filter_that_drops_the_chunk(demo: Settings, encoder: Encoder) -> None:
    with MilvusStore(demo.milvus) as store:
        retriever = HybridRetriever.from_store(encoder, store, demo.kb.name, demo.retrieval)
        best = retriever.search(QUERY).documents[0]
        other = next(r["source"] for r in retriever.knowledge_base.rows("", ["source"])
                     if r["source"] != best.metadata["source"])
    args = ["explain", QUERY, "--chunk", best.metadata["id"], "--source", other]
    printed = json.loads(run_cli([*args, "--json"], demo, program="rag").stdout)
    assert printed["lost_at"] == "filters" and printed["dropped_by"] == [f'source == "{other}"']
    assert printed["filter_fix"]["works"] is True and printed["filter_fix"]["retrieved_rank"] == 1
    table = run_cli(args, demo, program="rag")
    assert table.returncode == 0, table.stderr
    assert f'without the filter source == "{other}": checked by searching again, retrieved at rank 1' in table.stdout
    # In no list of the filtered search (rrf 0), it still has its rrf over the full lists, shown with its rank.
    rrf_row = next(line for line in table.stdout.splitlines() if line.startswith("│ rrf"))
    assert "0.0000" in rrf_row and f"rank {printed['rrf_rank']['rank']} (at {printed['rrf_rank']['score']:.4f} over " \
        "the full lists)" in rrf_row


def test_explain_shows_the_cross_encoders_score(demo: Settings, encoder: Encoder) -> None:
    reranking = demo.retrieval.model_copy(update={"rerank": "cross-encoder", "top_k": 3})
    with MilvusStore(demo.milvus) as store:
        retriever = HybridRetriever.from_store(encoder, store, demo.kb.name, reranking)
        first = retriever.search(QUERY).documents[0]
        expected = explain(retriever, QUERY, first.metadata["id"])
    env = {"RAG_RETRIEVAL__RERANK": "cross-encoder"}
    result = run_cli(["explain", QUERY, "--chunk", first.metadata["id"], "--top-k", "3", "--json"], demo,
                     program="rag", extra_env=env)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert expected.rerank is not None
    assert printed["rerank"]["raw"] == pytest.approx(expected.rerank.raw, abs=1e-6)
    assert printed["scores"]["rerank_rank"] == expected.scores.ranks.rerank
    table = run_cli(["explain", QUERY, "--chunk", first.metadata["id"], "--top-k", "3"], demo, program="rag",
                    extra_env=env)
    assert table.returncode == 0, table.stderr
    assert f"{expected.rerank.normalised:.4f} (logit {expected.rerank.raw:.4f})" in table.stdout
    assert f"rerank_rank {expected.scores.ranks.rerank}" in table.stdout
