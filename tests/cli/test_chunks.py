"""`rag chunks` as a user runs it, on a knowledge base ingested by the test: table, paging and JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.pipeline import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.store import MilvusStore
from tests.conftest import run_cli

GUIDE = "# Setup\n\nInstall the sync engine first.\n\n# Usage\n\nThe engine orders edits with a vector clock.\n"
ODD_NAME = "[red]notes[bold] 50%.md"


@pytest.fixture
def ingested(settings: Settings, encoder: Encoder, tmp_path: Path) -> Iterator[Settings]:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "guide.md").write_text(GUIDE, encoding="utf-8")
    (folder / ODD_NAME).write_text("Price list: 50% off for a_b members, \x1b[2J screen codes stay text.\n",
                                   encoding="utf-8")
    with MilvusStore(settings.milvus) as store:
        IngestPipeline(settings, encoder, store).run([folder])
    yield settings


def test_chunks_json_pages_and_contains(ingested: Settings, encoder: Encoder) -> None:
    everything = run_cli(["chunks", "--json", "--limit", "100"], ingested, program="rag")
    assert everything.returncode == 0, everything.stderr
    listed = json.loads(everything.stdout)
    assert listed["kb"] == "test_kb" and not listed["has_more"]
    assert all(c["tokens"] == encoder.count_tokens(c["text"]) for c in listed["chunks"])  # the chunker's count
    assert {c["source"] for c in listed["chunks"]} == {"guide.md", ODD_NAME}
    first = json.loads(run_cli(["chunks", "--json", "--limit", "1"], ingested, program="rag").stdout)
    rest = json.loads(run_cli(["chunks", "--json", "--offset", "1"], ingested, program="rag").stdout)
    assert first["has_more"]
    assert sorted(c["id"] for c in first["chunks"] + rest["chunks"]) == sorted(c["id"] for c in listed["chunks"])

    guide = json.loads(run_cli(["chunks", "--source", "guide.md", "--json"], ingested, program="rag").stdout)
    assert [c["chunk_index"] for c in guide["chunks"]] == list(range(len(guide["chunks"])))
    assert "vector clock" in " ".join(c["text"] for c in guide["chunks"])
    assert all(set(c) >= {"id", "source", "chunk_index", "page", "heading", "text"} for c in guide["chunks"])

    found = json.loads(run_cli(["chunks", "--contains", "50%", "--json"], ingested, program="rag").stdout)
    assert [c["source"] for c in found["chunks"]] == [ODD_NAME]
    assert "\x1b[2J" in found["chunks"][0]["text"]  # JSON keeps the text as stored
    none = json.loads(run_cli(["chunks", "--contains", "5%0", "--json"], ingested, program="rag").stdout)
    assert none["chunks"] == []


def test_chunks_table_prints_texts_safely(ingested: Settings) -> None:
    result = run_cli(["chunks", "--contains", "a_b"], ingested, program="rag")
    assert result.returncode == 0, result.stderr
    for header in ("source", "chunk", "page / heading", "text", "id"):
        assert header in result.stdout
    assert "[red]notes[bold]" in result.stdout  # markup shown as typed, not applied
    assert "\x1b" not in result.stdout and "\\x1b[2J" in result.stdout
    assert "chunks 1-1 of knowledge base test_kb" in result.stdout
    found = json.loads(run_cli(["chunks", "--contains", "a_b", "--json"], ingested, program="rag").stdout)
    assert found["chunks"][0]["id"] in result.stdout  # whole on one line, to be copied
    assert "tokens" in result.stdout and f"│ {found['chunks'][0]['tokens']} " in result.stdout
    # A narrow terminal gets one block per chunk: where it is from, its whole id on a line of its own, its text.
    narrow = run_cli(["chunks", "--contains", "a_b"], ingested, program="rag", extra_env={"COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    lines = narrow.stdout.splitlines()
    assert f"id {found['chunks'][0]['id']}" in lines
    assert any(line.startswith("#1 · [red]notes[bold] 50%.md · chunk 0") for line in lines)
    assert "screen codes stay text" in narrow.stdout and "\x1b" not in narrow.stdout
    assert max(len(line) for line in lines) <= 80
    paged = run_cli(["chunks", "--limit", "1"], ingested, program="rag")
    assert "next page: --offset 1" in paged.stdout
    missing = run_cli(["chunks", "--kb", "no_such_kb"], ingested, program="rag")
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr


def test_documents_with_chunk_counts(ingested: Settings) -> None:
    listed = run_cli(["chunks", "--documents", "--json"], ingested, program="rag")
    assert listed.returncode == 0, listed.stderr
    counts = {d["source"]: d["chunks"] for d in json.loads(listed.stdout)["documents"]}
    guide = json.loads(run_cli(["chunks", "--source", "guide.md", "--json"], ingested, program="rag").stdout)
    assert counts == {"guide.md": len(guide["chunks"]), ODD_NAME: 1}
    table = run_cli(["chunks", "--documents"], ingested, program="rag")
    assert "[red]notes[bold]" in table.stdout and "chunks" in table.stdout

