"""Search filters: each kind narrows a real search, and SearchFilters.matches agrees with its Milvus expression on
real rows (the demo knowledge base, and rows with awkward values) on embedded milvus-lite and a Milvus server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rag.config import Settings
from rag.errors import InvalidInputError
from rag.retrieval import HybridRetriever
from rag.retrieval.filters import SearchFilters, parse_pages, text_alternatives
from rag.store import ChunkRecord, KnowledgeBase, MilvusStore, ModelInfo

QUERY = "How does the sync engine resolve conflicts?"
AWKWARD: list[tuple[str, dict[str, Any]]] = [
    ("docs/a.md", {"file_type": "md"}),
    ("docs/sub/b.pdf", {"file_type": "pdf", "page": 3}),
    ("docs2/c.pdf", {"file_type": "pdf", "page": 7}),
    ("docs\\d.pdf", {"file_type": "pdf", "page": 8}),
    ("100%_sure.pdf", {"file_type": "pdf", "page": 5.0}),
    ("odd/e.pdf", {"file_type": "PDF", "page": "4"}),
    ("odd/f.pdf", {"page": True}),
    ("rows.csv#1", {"file_type": "csv", "row": 1, "fields": {"year": "2020", "ok": "true", "n": "5"}}),
    ("rows.json#1", {"file_type": "json", "row": 1, "fields": {"year": 2020, "ok": True, "n": 5.0}}),
    ("rows.json#2", {"file_type": "json", "row": 2, "fields": {"year": 2020.5, "ok": False, "n": [5]}}),
    ("rows.json#3", {"file_type": "json", "fields": "not a mapping"}),
    ("plain.txt", {}),
]
FILTERS = [
    SearchFilters(source="docs/a.md"), SearchFilters(source="docs\\d.pdf"),
    SearchFilters(source_prefix=SearchFilters.folder("docs")), SearchFilters(source_prefix="docs"),
    SearchFilters(source_prefix="docs\\"), SearchFilters(source_prefix="100%_"),
    SearchFilters(file_types=("pdf",)), SearchFilters(file_types=(".PDF", "md")), SearchFilters(file_types=("csv",)),
    SearchFilters(page_from=3, page_to=7), SearchFilters(page_from=5), SearchFilters(page_to=4),
    SearchFilters(page_from=1, page_to=1), SearchFilters(metadata={"row": 1}), SearchFilters(metadata={"page": 5}),
    SearchFilters(metadata={"page": 1}), SearchFilters(metadata={"page": True}), SearchFilters(fields={"ok": 1}),
    SearchFilters(fields={"year": "2020"}), SearchFilters(fields={"year": 2020}),
    SearchFilters(fields={"year": text_alternatives("2020")}), SearchFilters(fields={"ok": text_alternatives("true")}),
    SearchFilters(fields={"ok": False}), SearchFilters(fields={"n": text_alternatives("5")}),
    SearchFilters(fields={"year": text_alternatives("2020.5")}),
    SearchFilters(source_prefix="rows", fields={"year": 2020}, metadata={"row": 1}, file_types=("json",)),
    SearchFilters(file_types=("pdf",), page_from=4, source_prefix="docs"),
]


def awkward_kb(store: MilvusStore) -> KnowledgeBase:
    """A collection of rows whose sources and metadata test the edges (types, wildcards, missing keys)."""
    if store.exists("filter_rows"):
        store.drop("filter_rows")
    kb = store.open("filter_rows", ModelInfo("synthetic", "synthetic", 2), create=True)
    kb.upsert(ChunkRecord(id=f"r{i}", doc_id=source, source=source, chunk_index=0, text=source, title="",
                          metadata=meta, dense=[1.0, 0.0], sparse={1: 1.0}) for i, (source, meta) in enumerate(AWKWARD))
    return kb


def assert_agree(kb: KnowledgeBase, filters: list[SearchFilters]) -> int:
    """Milvus' rows for each filter's expression are the rows its ``matches`` keeps; returns how many kept some."""
    rows = kb.rows("", ["id", "source", "metadata"])
    nonempty = 0
    for flt in filters:
        by_milvus = {r["id"] for r in kb.rows(flt.expression(), ["id"])}
        by_python = {r["id"] for r in rows if flt.matches(r)}
        assert by_milvus == by_python, flt
        nonempty += bool(by_python) and by_python != {r["id"] for r in rows}
    return nonempty


def test_matches_agrees_with_milvus_lite_on_awkward_rows(make_settings: Callable[..., Settings], tmp_path) -> None:
    with MilvusStore(make_settings(tmp_path).milvus) as store:
        kb = awkward_kb(store)
        assert assert_agree(kb, FILTERS) == len(FILTERS)  # every filter keeps some rows, not all
        assert assert_agree(kb, [SearchFilters(source_prefix="1%"), SearchFilters(source_prefix="docs_")]) == 0


def test_matches_agrees_with_a_milvus_server(make_settings: Callable[..., Settings], milvus_server: str,
                                             tmp_path) -> None:
    with MilvusStore(make_settings(tmp_path, milvus={"uri": milvus_server}).milvus) as store:
        assert assert_agree(awkward_kb(store), FILTERS) == len(FILTERS)
        store.drop("filter_rows")


def test_matches_agrees_with_milvus_on_the_demo_rows(make_retriever: Callable[..., HybridRetriever]) -> None:
    kb = make_retriever().knowledge_base
    demo_filters = [
        SearchFilters(file_types=("pdf",)), SearchFilters(file_types=("md", "html")), SearchFilters(page_from=2),
        SearchFilters(page_from=1, page_to=1), SearchFilters(source_prefix="re"), SearchFilters(source="faq-zh.md"),
        SearchFilters(fields={"zh": "标签"}), SearchFilters(fields={"zh": text_alternatives("向量时钟")}),
        SearchFilters(metadata={"file_type": "csv"}, fields={"zh": "反向链接"}),
    ]
    assert assert_agree(kb, demo_filters) == len(demo_filters)


def test_each_filter_kind_narrows_a_search(make_retriever: Callable[..., HybridRetriever]) -> None:
    retriever = make_retriever(top_k=50)

    def found(**filters: Any) -> list[dict[str, Any]]:
        docs = retriever.search(QUERY, filters=filters).documents
        assert docs, filters
        return [d.metadata for d in docs]

    everything = found()
    assert len({m["metadata"]["file_type"] for m in everything}) > 3
    assert {m["metadata"]["file_type"] for m in found(file_types=["pdf"])} == {"pdf"}
    assert {m["metadata"]["file_type"] for m in found(file_types=["md", "txt"])} == {"md", "txt"}
    pages = [m["page"] for m in found(page_from=1, page_to=1)]
    assert set(pages) == {1} and len(pages) < len([m for m in everything if m["page"] is not None])
    assert {m["page"] for m in found(page_from=2)} <= set(range(2, 100))
    glossary = found(fields={"zh": "向量时钟"})
    assert [m["doc_id"] for m in glossary] == ["glossary.csv#G04"]
    assert {m["doc_id"] for m in found(fields={"zh": ("标签", "反向链接")})} == {"glossary.csv#G02", "glossary.csv#G03"}
    result = retriever.search(QUERY, filters={"file_types": ["pdf"], "page_from": 1, "page_to": 1})
    assert result.filters["file_types"] == ["pdf"] and result.filters["page_from"] == 1


def test_bad_filters_say_what_to_write() -> None:
    assert parse_pages("3-7") == (3, 7) and parse_pages("5") == (5, 5) and parse_pages("3-") == (3, None)
    assert parse_pages(" -7") == (None, 7)
    for text in ("", "-", "a-b", "1-2-3", "3..7"):
        with pytest.raises(InvalidInputError, match="not a page range"):
            parse_pages(text)
    with pytest.raises(InvalidInputError, match="empty"):
        SearchFilters(page_from=7, page_to=3)
    with pytest.raises(InvalidInputError, match="unknown filter key"):
        SearchFilters.coerce({"pages": "3-7"})
    assert text_alternatives("2020") == ("2020", 2020) and text_alternatives("True") == ("True", True)
    assert text_alternatives("2.5") == ("2.5", 2.5) and text_alternatives("tag") == ("tag",)
    flt = SearchFilters(file_types=(".PDF",), page_from=2, fields={"year": ("2020", 2020)})
    assert SearchFilters.coerce(flt.as_dict()) == SearchFilters.coerce(flt.as_dict()) and flt.file_types == ("pdf",)
    assert SearchFilters.coerce(flt.as_dict()).expression() == flt.expression()
