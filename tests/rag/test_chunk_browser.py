"""The chunk browser on a real milvus-lite knowledge base: paging, document order, literal word search."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import MilvusSettings
from rag.errors import InvalidInputError
from rag.store import ChunkRecord, MilvusStore, ModelInfo
from rag.workbench import ChunkBrowser

MODEL = ModelInfo("tiny", "abc123", 4)
SPECIAL = ['50% off', '500 off', 'a_b c', 'axb c', 'say "hi" twice', 'back\\slash', '数据库连接池', 'x\\%y',
           'x/%y']


def _record(doc_id: str, index: int, text: str, source: str | None = None, meta: dict | None = None) -> ChunkRecord:
    chunk_id = hashlib.sha256(f"{doc_id}/{index}".encode()).hexdigest()[:32]
    return ChunkRecord(chunk_id, doc_id, source or doc_id, index, text, f"Title {doc_id}", meta or {},
                       [1.0, 0.0, 0.0, 0.0], {index + 1: 0.5})


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[ChunkBrowser]:
    records = [_record("plain.md", i, f"plain chunk {i}", meta={"heading": f"Part {i}"}) for i in range(12)]
    records += [_record("manual.pdf", i, f"page text {i}", meta={"page": i + 1}) for i in range(5)]
    records += [_record("special.txt", i, text) for i, text in enumerate(SPECIAL)]
    records += [_record(f"parts.csv#{key}", 0, f"record {key}", source="parts.csv") for key in ("b", "a")]
    with MilvusStore(MilvusSettings(uri=str(tmp_path / "m.db"))) as store:
        kb = store.open("kb", MODEL, create=True)
        kb.upsert(reversed(records))  # stored order must not matter
        yield ChunkBrowser(kb, count_tokens=lambda text: len(text.split()))


def test_pages_cover_every_chunk_once(browser: ChunkBrowser) -> None:
    first = browser.chunks(limit=14)
    second = browser.chunks(limit=14, offset=14)
    assert first.has_more and not second.has_more
    ids = [c.id for c in first.chunks + second.chunks]
    assert len(ids) == len(set(ids)) == 28
    assert browser.chunks(limit=14).chunks == first.chunks  # the same page twice


def test_a_documents_chunks_in_order_with_page_heading_and_tokens(browser: ChunkBrowser) -> None:
    head = browser.chunks(source="plain.md", limit=5)
    tail = browser.chunks(source="plain.md", limit=10, offset=5)
    assert [c.provenance.chunk_index for c in head.chunks + tail.chunks] == list(range(12))
    assert head.has_more and not tail.has_more
    assert head.chunks[3].provenance.heading == "Part 3" and head.chunks[3].text == "plain chunk 3"
    assert head.chunks[3].tokens == 3
    pdf = browser.chunks(source="manual.pdf")
    assert [c.provenance.page for c in pdf.chunks] == [1, 2, 3, 4, 5]
    records = browser.chunks(source="parts.csv")
    assert [c.provenance.doc_id for c in records.chunks] == ["parts.csv#a", "parts.csv#b"]
    as_json = head.chunks[0].to_dict()
    assert as_json["chunk_index"] == 0 and as_json["heading"] == "Part 0" and as_json["id"] == head.chunks[0].id


def test_documents_with_chunk_counts(browser: ChunkBrowser) -> None:
    docs = browser.documents(limit=3) + browser.documents(limit=3, offset=3)
    counts = {d.doc_id: d.chunks for d in docs}
    assert counts == {"plain.md": 12, "manual.pdf": 5, "special.txt": len(SPECIAL), "parts.csv#a": 1,
                      "parts.csv#b": 1}
    assert {d.source for d in docs if d.doc_id.startswith("parts")} == {"parts.csv"}


@pytest.mark.parametrize(("words", "expected"), [
    ("50%", ["50% off"]),  # % is not a wildcard
    ("a_b", ["a_b c"]),  # nor is _
    ('"hi"', ['say "hi" twice']),
    ("back\\slash", ["back\\slash"]),
    ("x\\%y", ["x/%y", "x\\%y"]),  # a backslash stands for any one character (milvus-lite cannot match it)
    ("连接", ["数据库连接池"]),
    ("off 500", ["500 off"]),  # every word, in any order
])
def test_contains_matches_words_literally(browser: ChunkBrowser, words: str, expected: list[str]) -> None:
    found = browser.chunks(contains=words, limit=50)
    assert sorted(c.text for c in found.chunks) == expected


def test_contains_searches_sources_and_combines_with_source(browser: ChunkBrowser) -> None:
    assert sorted(c.provenance.doc_id for c in browser.chunks(contains="parts.csv").chunks) == [
        "parts.csv#a", "parts.csv#b"]
    within = browser.chunks(source="plain.md", contains="chunk 1")
    assert [c.text for c in within.chunks] == ["plain chunk 1", "plain chunk 10", "plain chunk 11"]
    assert browser.chunks(contains="nowhere to be found").chunks == []


def test_too_deep_a_page_is_a_clear_error(browser: ChunkBrowser) -> None:
    with pytest.raises(InvalidInputError, match="16384"):
        browser.chunks(offset=16384)


def test_first_chunk_of_a_document(browser: ChunkBrowser) -> None:
    """What the evaluation page explains for a missed BEIR document: its chunk number 0."""
    assert browser.first_chunk("manual.pdf") == _record("manual.pdf", 0, "").id
    assert browser.first_chunk("parts.csv#a") == _record("parts.csv#a", 0, "").id
    assert browser.first_chunk('no "such" document') is None
