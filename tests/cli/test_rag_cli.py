"""`rag search`, `rag similarity` and `rag ask` as a user runs them, against the library's own numbers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ingest.pipeline import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.retrieval import HybridRetriever
from rag.similarity import compare_texts
from rag.store import MilvusStore
from tests.conftest import EXAMPLES, run_cli
from tests.support.ollama_server import ChatBehaviour, OllamaTestServer, free_port

QUERY = "How does the sync engine order edits? vector clock"


@pytest.fixture
def demo(settings: Settings, encoder: Encoder) -> Iterator[Settings]:
    with MilvusStore(settings.milvus) as store:
        IngestPipeline(settings, encoder, store).run([EXAMPLES])
    yield settings


def test_search_json_equals_the_retriever(demo: Settings, encoder: Encoder) -> None:
    result = run_cli(["search", QUERY, "--top-k", "4", "--json"], demo, program="rag")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    with MilvusStore(demo.milvus) as store:
        expected = HybridRetriever.from_store(encoder, store, demo.kb.name, demo.retrieval).search(QUERY, top_k=4)
    assert [d["id"] for d in printed["documents"]] == [d.metadata["id"] for d in expected.documents]
    for mine, theirs in zip(printed["documents"], expected.documents, strict=True):
        for name in ("dense", "sparse", "hybrid", "final"):
            assert mine["scores"][name] == pytest.approx(theirs.metadata["scores"][name], abs=1e-6)
    assert printed["formula"] == "final = hybrid = (1.0 x dense + 0.3 x sparse) / 1.3"


def test_search_table_and_modes(demo: Settings) -> None:
    table = run_cli(["search", QUERY, "--mode", "sparse", "--top-k", "3"], demo, program="rag")
    assert table.returncode == 0, table.stderr
    for header in ("rank", "source", "dense %", "sparse", "hybrid", "matched terms"):
        assert header in table.stdout
    assert "final = sparse" in table.stdout
    bad = run_cli(["search", QUERY, "--kb", "no_such_kb"], demo, program="rag")
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_similarity_json_and_empty_input(settings: Settings, encoder: Encoder) -> None:
    result = run_cli(["similarity", "我喜欢看书", "阅读使我快乐", "--json"], settings, program="rag")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    expected = compare_texts(encoder, "我喜欢看书", "阅读使我快乐", settings.retrieval.weights, settings.levels)
    for name in ("dense", "sparse", "colbert", "hybrid"):
        assert printed[name] == pytest.approx(getattr(expected, name), abs=1e-6)
    assert printed["level"] == expected.level and printed["dense_percent"] == pytest.approx(100 * expected.dense)

    empty = run_cli(["similarity", "  ", "阅读使我快乐"], settings, program="rag")
    assert empty.returncode == 2 and "Text A is empty" in " ".join(empty.stderr.split())


def test_ask_streams_the_answer_then_the_sources(demo: Settings) -> None:
    with OllamaTestServer(ChatBehaviour(reply="Edits are ordered with a vector clock [1].")) as server:
        env = demo.model_copy(update={"llm": demo.llm.model_copy(update={"base_url": server.url})})
        result = run_cli(["ask", QUERY, "--top-k", "3"], env, program="rag")
        chats = [r for r in server.requests if r.path == "/api/chat"]
    assert result.returncode == 0, result.stderr
    assert "Edits are ordered with a vector clock [1]." in result.stdout
    assert "Sources" in result.stdout and "[1]" in result.stdout
    assert len(chats) == 1 and chats[0].body["stream"] is True
    assert chats[0].body["options"]["num_ctx"] == demo.llm.num_ctx


def test_ask_with_ollama_offline_keeps_the_sources(demo: Settings) -> None:
    offline = f"http://127.0.0.1:{free_port()}"
    env = demo.model_copy(update={"llm": demo.llm.model_copy(update={"base_url": offline})})
    result = run_cli(["ask", QUERY], env, program="rag")
    assert result.returncode == 1
    assert "LLM offline" in result.stderr and "ollama serve" in result.stderr and "Traceback" not in result.stderr
    assert "Sources" in result.stdout
