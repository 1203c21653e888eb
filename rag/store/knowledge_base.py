"""Reading and writing the chunks of one knowledge base (one Milvus collection)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pymilvus import MilvusClient

from rag.store.schema import ChunkRecord, decode_sparse

if TYPE_CHECKING:
    from rag.store.client import ModelInfo

WRITE_BATCH = 256
FILTER_BATCH = 200


_LITERAL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})


def quote(value: str) -> str:
    """A Milvus filter-expression string literal for ``value``.

    Hand-escaped because milvus-lite 3.2 rejects filter templates (``filter_params``: "unexpected character
    '{'"). Its parser ends a literal at a raw newline or carriage return and knows the escapes \\\\, \\",
    \\n and \\r; every other character (tabs, control characters, any Unicode) is taken as it is.
    """
    return '"' + value.translate(_LITERAL_ESCAPES) + '"'


def in_filter(field_name: str, values: Sequence[str]) -> str:
    return f"{field_name} in [{', '.join(quote(v) for v in values)}]"


@dataclass
class StoredDocument:
    """What the collection holds for one document: its chunks' ids, indexes and recorded metadata."""

    doc_id: str
    source: str
    title: str
    chunk_ids: list[str] = field(default_factory=list)
    chunk_indexes: list[int] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)

    @property
    def chunks(self) -> int:
        return len(self.chunk_ids)

    def is_complete(self, content_hash: str, pipeline: str) -> bool:
        """True when every chunk carries this hash + pipeline and indexes 0..n-1 are all present once."""
        if not self.metadata:
            return False
        expected = self.metadata[0].get("chunk_count")
        return (
            all(m.get("content_hash") == content_hash and m.get("pipeline") == pipeline for m in self.metadata)
            and sorted(self.chunk_indexes) == list(range(expected if isinstance(expected, int) else -1))
        )


class KnowledgeBase:
    """One collection: upsert chunks, delete documents, list what is stored."""

    def __init__(self, client: MilvusClient, name: str, model: ModelInfo) -> None:
        self.client = client
        self.name = name
        self.model = model

    def upsert(self, records: Iterable[ChunkRecord]) -> int:
        rows = [r.to_row() for r in records]
        for start in range(0, len(rows), WRITE_BATCH):
            self.client.upsert(self.name, rows[start : start + WRITE_BATCH])
        return len(rows)

    def delete_ids(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), FILTER_BATCH):
            self.client.delete(self.name, ids=list(ids[start : start + FILTER_BATCH]))

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        for start in range(0, len(doc_ids), FILTER_BATCH):
            self.client.delete(self.name, filter=in_filter("doc_id", doc_ids[start : start + FILTER_BATCH]))

    def count(self) -> int:
        result = self.client.query(self.name, filter="", output_fields=["count(*)"])
        return int(result[0]["count(*)"])

    def _scan(self, filter_expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        iterator = self.client.query_iterator(self.name, batch_size=1000, filter=filter_expr, output_fields=fields)
        try:
            while rows := iterator.next():
                yield from rows
        finally:
            iterator.close()

    @staticmethod
    def _collect(rows: Iterable[dict[str, Any]]) -> dict[str, StoredDocument]:
        docs: dict[str, StoredDocument] = {}
        for row in rows:
            doc = docs.get(row["doc_id"])
            if doc is None:
                doc = docs[row["doc_id"]] = StoredDocument(row["doc_id"], row["source"], row.get("title", ""))
            doc.chunk_ids.append(row["id"])
            doc.chunk_indexes.append(int(row["chunk_index"]))
            doc.metadata.append(row.get("metadata") or {})
        return docs

    def documents(
        self, doc_ids: Sequence[str] | None = None, *, sources: Sequence[str] | None = None
    ) -> dict[str, StoredDocument]:
        """Stored documents keyed by doc_id: all of them, or those among ``doc_ids`` or from ``sources``."""
        fields = ["id", "doc_id", "source", "title", "chunk_index", "metadata"]
        if doc_ids is None and sources is None:
            return self._collect(self._scan("", fields))
        field_name, values = ("doc_id", doc_ids) if doc_ids is not None else ("source", sources or [])
        rows: list[dict[str, Any]] = []
        for start in range(0, len(values), FILTER_BATCH):
            rows.extend(self._scan(in_filter(field_name, values[start : start + FILTER_BATCH]), fields))
        return self._collect(rows)

    def chunks(self, doc_id: str, *, vectors: bool = False) -> list[dict[str, Any]]:
        """A document's chunks in order, with their vectors if asked."""
        fields = ["id", "doc_id", "source", "chunk_index", "text", "title", "metadata"]
        if vectors:
            fields += ["dense", "sparse"]
        rows = list(self._scan(in_filter("doc_id", [doc_id]), fields))
        if vectors:
            for row in rows:
                row["sparse"] = decode_sparse(row["sparse"])
        return sorted(rows, key=lambda r: r["chunk_index"])
