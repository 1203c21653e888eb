"""Browsing a knowledge base page by page: its documents with chunk counts, a document's chunks in order,
and the chunks whose text or source contains given words. Never reads more than one page of chunk texts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rag.retrieval.provenance import Provenance
from rag.store.knowledge_base import FILTER_BATCH, KnowledgeBase, contains_filter, in_filter, quote

CHUNK_FIELDS = ["id", "doc_id", "source", "chunk_index", "title", "metadata", "text"]
KEY_FIELDS = ["id", "doc_id", "chunk_index"]


@dataclass(frozen=True)
class ChunkView:
    """One stored chunk as the browser shows it: its id, where it comes from, its text and (when a tokenizer
    was given) its length in the encoder's tokens."""

    id: str
    provenance: Provenance
    text: str
    tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        origin = self.provenance
        return {"id": self.id, "source": origin.source, "doc_id": origin.doc_id, "chunk_index": origin.chunk_index,
                "page": origin.page, "heading": origin.heading, "tokens": self.tokens, "text": self.text}


@dataclass(frozen=True)
class DocumentEntry:
    """A stored document and how many chunks it has."""

    doc_id: str
    source: str
    title: str
    chunks: int

    def to_dict(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "source": self.source, "title": self.title, "chunks": self.chunks}


@dataclass(frozen=True)
class ChunkPage:
    """One page of chunks: ``offset`` and ``limit`` as asked, ``has_more`` when a next page has rows."""

    chunks: list[ChunkView]
    offset: int
    limit: int
    has_more: bool

    def to_dict(self) -> dict[str, Any]:
        return {"offset": self.offset, "limit": self.limit, "has_more": self.has_more,
                "chunks": [c.to_dict() for c in self.chunks]}


def words_filter(text: str) -> str:
    """Rows whose text or source contains every whitespace-separated word of ``text`` (literally, any case of
    ``%``, ``_``, quotes or backslashes); empty when ``text`` has no word."""
    return " and ".join(
        f"({contains_filter('text', word)} or {contains_filter('source', word)})" for word in text.split()
    )


class ChunkBrowser:
    """Paged reading of one knowledge base. ``count_tokens`` (e.g. ``Encoder.count_tokens``) adds token counts."""

    def __init__(self, knowledge_base: KnowledgeBase, count_tokens: Callable[[str], int] | None = None) -> None:
        self.knowledge_base = knowledge_base
        self._count_tokens = count_tokens

    def documents(self, limit: int = 50, offset: int = 0) -> list[DocumentEntry]:
        """A page of documents (one row each: the chunks numbered 0), with their chunk counts."""
        firsts = self.knowledge_base.page("chunk_index == 0", ["doc_id", "source", "title"], limit, offset)
        doc_ids = [row["doc_id"] for row in firsts]
        counts: Counter[str] = Counter()
        for start in range(0, len(doc_ids), FILTER_BATCH):
            rows = self.knowledge_base.rows(in_filter("doc_id", doc_ids[start : start + FILTER_BATCH]), ["doc_id"])
            counts.update(row["doc_id"] for row in rows)
        return [DocumentEntry(row["doc_id"], row["source"], row.get("title", ""), counts[row["doc_id"]])
                for row in firsts]

    def chunks(self, *, source: str | None = None, contains: str | None = None, limit: int = 20,
               offset: int = 0) -> ChunkPage:
        """A page of chunks. With ``source``: that file's chunks in document and chunk order (only their keys
        are read to order them). Without: all chunks, or those containing ``contains``, in Milvus' order."""
        conditions = [f"source == {quote(source)}"] if source else []
        if contains and contains.split():
            conditions.append(words_filter(contains))
        filter_expr = " and ".join(f"({c})" for c in conditions)
        if source:
            keys = sorted(self.knowledge_base.rows(filter_expr, KEY_FIELDS),
                          key=lambda r: (r["doc_id"], r["chunk_index"]))
            ids = [row["id"] for row in keys[offset : offset + limit]]
            rows = self.knowledge_base.rows(in_filter("id", ids), CHUNK_FIELDS) if ids else []
            order = {chunk_id: i for i, chunk_id in enumerate(ids)}
            rows.sort(key=lambda r: order[r["id"]])
            has_more = len(keys) > offset + limit
        else:
            rows = self.knowledge_base.page(filter_expr, CHUNK_FIELDS, limit + 1, offset)
            has_more = len(rows) > limit
            rows = rows[:limit]
        return ChunkPage([self._view(row) for row in rows], offset, limit, has_more)

    def first_chunk(self, doc_id: str) -> str | None:
        """The id of document ``doc_id``'s first chunk (None: no such document)."""
        rows = self.knowledge_base.page(f"doc_id == {quote(doc_id)} and chunk_index == 0", ["id"], 1, 0)
        return rows[0]["id"] if rows else None

    def _view(self, row: dict[str, Any]) -> ChunkView:
        tokens = self._count_tokens(row["text"]) if self._count_tokens else None
        return ChunkView(row["id"], Provenance.from_row(row), row["text"], tokens)
