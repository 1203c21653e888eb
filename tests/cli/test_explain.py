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
