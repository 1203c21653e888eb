"""`rag search`, `rag similarity` and `rag ask` as a user runs them, against the library's own numbers."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.pipeline import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.retrieval import HybridRetriever
from rag.similarity import compare_texts
from rag.store import MilvusStore
from tests.conftest import cli_env, run_cli
from tests.support.ollama_server import ChatBehaviour, OllamaTestServer, free_port

QUERY = "How does the sync engine order edits? vector clock"


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


def test_search_reranks_with_the_cross_encoder(demo: Settings, encoder: Encoder) -> None:
    result = run_cli(["search", QUERY, "--top-k", "4", "--rerank", "cross-encoder", "--json"], demo, program="rag")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    with MilvusStore(demo.milvus) as store:
        expected = HybridRetriever.from_store(encoder, store, demo.kb.name, demo.retrieval).search(
            QUERY, top_k=4, rerank="cross-encoder")
    assert printed["rerank"] == "cross-encoder" and printed["formula"] == expected.formula
    assert [d["id"] for d in printed["documents"]] == [d.metadata["id"] for d in expected.documents]
    for mine, theirs in zip(printed["documents"], expected.documents, strict=True):
        for name in ("rerank", "rerank_raw", "rerank_rank", "final"):
            assert mine["scores"][name] == pytest.approx(theirs.metadata["scores"][name], abs=1e-6)
    table = run_cli(["search", QUERY, "--top-k", "3", "--rerank", "cross-encoder"], demo, program="rag")
    assert table.returncode == 0, table.stderr
    first = expected.documents[0].metadata["scores"]
    assert "rerank (logit)" in table.stdout and f"{first['rerank']:.3f} ({first['rerank_raw']:.3f})" in table.stdout
    assert ", cross-encoder " in table.stdout and "rerank = sigmoid(cross-encoder logit)" in table.stdout
    [(candidates, reranked)] = re.findall(r" of (\d+) candidates; .*, cross-encoder \d+ for (\d+) candidates\)",
                                          table.stdout.replace("\n", " "))
    assert int(reranked) == min(demo.retrieval.rerank_candidates, int(candidates))  # the step's time, and its size
    bad = run_cli(["search", QUERY, "--rerank", "bm25"], demo, program="rag")
    assert bad.returncode == 2 and "rerank must be one of" in bad.stderr and "Traceback" not in bad.stderr


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


@pytest.fixture
def hostile(settings: Settings, encoder: Encoder, tmp_path: Path) -> Settings:
    """A knowledge base whose file name, heading and text hold escape sequences and Rich markup."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "\x1b[2J[red]sync.md").write_text(
        "# [bold]Sync\x1b[31m engine\n\nThe sync engine orders edits with a vector clock. \x1b[2J[red]alarm[/red]\n",
        encoding="utf-8",
    )
    with MilvusStore(settings.milvus) as store:
        IngestPipeline(settings, encoder, store).run([folder])
    return settings


def test_item4_search_shows_escape_codes_and_markup_verbatim(hostile: Settings) -> None:
    result = run_cli(["search", "sync engine vector clock [red]", "--top-k", "3"], hostile, program="rag")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr, repr(result.stdout)
    assert "\\x1b[2J[red]sync.md" in result.stdout and "[bold]Sync\\x1b[31m engine" in result.stdout
    assert "'sync engine vector clock [red]'" in result.stdout


def test_item4_ask_shows_escape_codes_in_the_answer_and_error(hostile: Settings) -> None:
    reply = "Edits are ordered\x1b[2J by a [red]vector clock[/red] [1].\nSecond paragraph."
    with OllamaTestServer(ChatBehaviour(reply=reply)) as server:
        env = hostile.model_copy(update={"llm": hostile.llm.model_copy(update={"base_url": server.url})})
        answered = run_cli(["ask", "How are edits ordered?", "--top-k", "2"], env, program="rag")
        server.behaviour.fail_after = 3
        server.behaviour.error_message = "runner died \x1b]0;pwned\x07 [red]boom[/red]"
        failed = run_cli(["ask", "How are edits ordered?", "--top-k", "2"], env, program="rag")
    assert answered.returncode == 0, answered.stderr
    for result in (answered, failed):
        assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stderr, repr(result.stdout)
    assert "Edits are ordered\\x1b[2J by a [red]vector clock[/red] [1].\nSecond paragraph." in answered.stdout
    assert "Sources" in answered.stdout and "\\x1b[2J[red]sync.md" in answered.stdout
    assert failed.returncode == 1 and "runner died \\x1b]0;pwned\\x07 [red]boom[/red]" in failed.stderr


RAG_USAGE_ERRORS = [
    [],
    ["search"],
    ["search", "q", "--top-k", "0"],
    ["search", "q", "--min-score", "abc"],
    ["search", "q", "--kb", "it's"],
    ["ask"],
    ["ask", "q", "--top-k", "x"],
    ["similarity", "a"],
    ["similarity", "a", "b", "--bogus"],
    ["eval", "--out"],
    ["eval", "--kb", 'a" or 1==1'],
    ["ui", "--port", "abc"],
    ["ui", "extra"],
]


@pytest.mark.parametrize("args", RAG_USAGE_ERRORS, ids=lambda args: " ".join(args) or "(none)")
def test_item9_usage_errors_print_usage_not_a_traceback(settings: Settings, args: list[str]) -> None:
    result = run_cli(args, settings, program="rag")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Usage: rag" in result.stderr and "Traceback" not in result.stderr, result.stderr


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_item12_sigterm_to_rag_ui_stops_streamlit(settings: Settings) -> None:
    port = free_port()
    exe = Path(sys.executable).parent / "rag"
    proc = subprocess.Popen([str(exe), "ui", "--port", str(port)], env=cli_env(settings), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _answers(port):
            assert proc.poll() is None and time.monotonic() < deadline, "the web app did not start"
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        deadline = time.monotonic() + 60
        while _answers(port) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _answers(port), "Streamlit still holds the port after `rag ui` got SIGTERM"
    finally:
        if _group_alive(proc.pid):  # an orphaned Streamlit must not outlive the test
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
