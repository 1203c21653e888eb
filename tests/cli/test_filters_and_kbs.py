"""`rag search`, `rag ask` and `rag explain` with several knowledge bases (--kb A --kb B) and the search filters
(--source, --folder, --type, --pages, --meta), run as a user runs them, against the library's own results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from ingest.pipeline import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.retrieval import HybridRetriever, MultiKBRetriever
from rag.store import MilvusStore
from tests.conftest import EXAMPLES, cli_env, run_cli
from tests.support.ollama_server import ChatBehaviour, OllamaTestServer

QUERY = "How does the sync engine order edits? vector clock"
REMOTE = "remote work days per week"
SECOND = "handbook"


@pytest.fixture
def two_kbs(demo: Settings, encoder: Encoder, tmp_path: Path) -> Settings:
    """kb.name holds examples/kb; ``handbook`` holds two of its files in folders (policies/, faq/zh/)."""
    root = tmp_path / "handbook"
    (root / "policies").mkdir(parents=True)
    (root / "faq" / "zh").mkdir(parents=True)
    shutil.copy(EXAMPLES / "remote-work-policy.html", root / "policies")
    shutil.copy(EXAMPLES / "faq-zh.md", root / "faq" / "zh")
    with MilvusStore(demo.milvus) as store:
        IngestPipeline(demo, encoder, store).run([root], kb=SECOND)
    return demo


def search_json(settings: Settings, *args: str, query: str = QUERY) -> dict:
    result = run_cli(["search", query, *args, "--json"], settings, program="rag")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_search_two_knowledge_bases_equals_the_library_and_names_each_chunks_kb(
    two_kbs: Settings, encoder: Encoder
) -> None:
    kbs = [two_kbs.kb.name, SECOND]
    printed = search_json(two_kbs, "--kb", kbs[0], "--kb", SECOND, "--top-k", "8", "--fusion", "rrf", query=REMOTE)
    with MilvusStore(two_kbs.milvus) as store:
        expected = MultiKBRetriever.from_store(encoder, store, kbs, two_kbs.retrieval).search(REMOTE, top_k=8,
                                                                                               fusion="rrf")
    assert printed["kbs"] == kbs and printed["kb"] == "+".join(kbs)
    assert [(d["kb"], d["id"]) for d in printed["documents"]] == \
        [(d.metadata["kb"], d.metadata["id"]) for d in expected.documents]
    assert {d["kb"] for d in printed["documents"]} == set(kbs)
    for mine, theirs in zip(printed["documents"], expected.documents, strict=True):
        assert mine["scores"]["final"] == pytest.approx(theirs.metadata["scores"]["final"], abs=1e-9)
    table = run_cli(["search", REMOTE, "--kb", kbs[0], "--kb", SECOND, "--top-k", "8"], two_kbs, program="rag")
    assert table.returncode == 0, table.stderr
    header = next(line for line in table.stdout.splitlines() if "source" in line and "rank" in line)
    assert header.index("kb") < header.index("source") and f"│ {SECOND}" in table.stdout
    single = run_cli(["search", QUERY, "--top-k", "3"], two_kbs, program="rag")
    header = next(line for line in single.stdout.splitlines() if "source" in line and "rank" in line)
    assert " kb " not in header  # one knowledge base: the table is as before


def search_json_in_process(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> dict:
    """`rag search ... --json` run in this process (Typer's CliRunner: the same app, without a new interpreter
    loading torch and the model again), for tests that try many options."""
    for name, value in cli_env(settings).items():
        if name.startswith("RAG_"):
            monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["search", QUERY, *args, "--json"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return json.loads(result.stdout)


def test_each_filter_option_keeps_only_its_chunks(
    two_kbs: Settings, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def documents(*args: str) -> list[dict]:
        docs = search_json_in_process(two_kbs, monkeypatch, "--top-k", "50", *args)["documents"]
        assert docs, args
        return docs

    assert {d["metadata"]["file_type"] for d in documents("--type", "pdf")} == {"pdf"}
    assert {d["metadata"]["file_type"] for d in documents("--type", ".PDF", "--type", "md")} == {"pdf", "md"}
    assert {d["page"] for d in documents("--pages", "2-3")} == {2, 3}
    assert {d["page"] for d in documents("--pages", "3")} == {3}
    assert [d["doc_id"] for d in documents("--meta", "zh=向量时钟")] == ["glossary.csv#G04"]
    assert {d["doc_id"] for d in documents("--meta", "zh=标签", "--meta", "zh=反向链接")} == \
        {"glossary.csv#G02", "glossary.csv#G03"}
    assert {d["source"] for d in documents("--source", "product-faq.md")} == {"product-faq.md"}
    in_folder = documents("--kb", SECOND, "--folder", "faq")
    assert {d["source"] for d in in_folder} == {"faq/zh/faq-zh.md"} and {d["kb"] for d in in_folder} == {SECOND}
    assert search_json_in_process(two_kbs, monkeypatch, "--kb", SECOND, "--folder", "fa")["documents"] == []  # a folder
    both = documents("--kb", two_kbs.kb.name, "--kb", SECOND, "--type", "html")
    assert {(d["kb"], d["source"]) for d in both} == {(two_kbs.kb.name, "remote-work-policy.html"),
                                                      (SECOND, "policies/remote-work-policy.html")}
    printed = search_json(two_kbs, "--type", "pdf", "--pages", "2-")
    assert printed["filters"]["file_types"] == ["pdf"] and printed["filters"]["page_from"] == 2
    with MilvusStore(two_kbs.milvus) as store:
        expected = HybridRetriever.from_store(encoder, store, two_kbs.kb.name, two_kbs.retrieval).search(
            QUERY, filters={"file_types": ["pdf"], "page_from": 2})
    assert [d["id"] for d in printed["documents"]] == [d.metadata["id"] for d in expected.documents]


@pytest.mark.parametrize("args,message", [
    (["--pages", "three"], "not a page range"),
    (["--pages", "7-3"], "is empty"),
    (["--meta", "year"], "is not KEY=VALUE"),
    (["--folder", "docs", "--source-prefix", "do"], "not both"),
    (["--kb", "ok", "--kb", "not-a-name"], "is not a knowledge-base name"),
])
def test_bad_filter_options_print_usage_not_a_traceback(settings: Settings, args: list[str], message: str) -> None:
    result = run_cli(["search", QUERY, *args], settings, program="rag")
    assert result.returncode == 2 and message in result.stderr
    assert "Usage:" in result.stderr and "Traceback" not in result.stderr


def test_ask_over_two_knowledge_bases_with_a_filter(two_kbs: Settings) -> None:
    with OllamaTestServer(ChatBehaviour(reply="Remote work is allowed [1].")) as server:
        env = two_kbs.model_copy(update={"llm": two_kbs.llm.model_copy(update={"base_url": server.url})})
        result = run_cli(["ask", REMOTE, "--kb", two_kbs.kb.name, "--kb", SECOND,
                          "--type", "html", "--top-k", "4"], env, program="rag")
        prompt = json.dumps([r.body for r in server.requests if r.path == "/api/chat"], ensure_ascii=False)
    assert result.returncode == 0, result.stderr
    assert "Remote work is allowed [1]." in result.stdout and "Sources" in result.stdout
    assert f"│ {SECOND}" in result.stdout and f"│ {two_kbs.kb.name}" in result.stdout
    assert "remote-work-policy.html" in prompt and "faq-zh" not in prompt and "glossary" not in prompt


def test_explain_names_a_type_or_page_filter_that_drops_the_chunk(demo: Settings, encoder: Encoder) -> None:
    with MilvusStore(demo.milvus) as store:
        retriever = HybridRetriever.from_store(encoder, store, demo.kb.name, demo.retrieval)
        best = retriever.search(QUERY, filters={"file_types": ["pdf"]}).documents[0]
    page = best.metadata["page"]
    args = ["explain", QUERY, "--chunk", best.metadata["id"], "--type", "md", "--pages", f"{page}-{page}", "--json"]
    printed = json.loads(run_cli(args, demo, program="rag").stdout)
    assert printed["lost_at"] == "filters"
    assert printed["dropped_by"] == ['metadata["file_type"] == "md"']
    assert printed["filter_fix"]["value"]["page_from"] == page and "file_types" not in printed["filter_fix"]["value"]
    assert printed["filter_fix"]["works"] is True
    twice = run_cli(["explain", QUERY, "--chunk", "x", "--kb", "a", "--kb", "b"], demo, program="rag")
    assert twice.returncode == 2 and "give --kb once" in twice.stderr and "Traceback" not in twice.stderr
