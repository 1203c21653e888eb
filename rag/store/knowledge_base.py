"""Reading and writing the chunks of one knowledge base (one Milvus collection)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from rag.config import MILVUS_MAX_LIMIT
from rag.errors import InvalidInputError, StoreUnavailableError
from rag.store.model_info import ModelInfo
from rag.store.schema import ChunkRecord, decode_sparse

WRITE_BATCH = 256
FILTER_BATCH = 200


_LITERAL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})


def quote(value: str) -> str:
    """A Milvus filter-expression string literal for ``value``.

    Hand-escaped, not passed as a filter template (``filter="source == {s}"`` with ``filter_params``),
    because milvus-lite 3.2.2 rejects templates in query, delete and search alike ("unexpected character
    '{'"); a Milvus server accepts them, but one code path serves both. milvus-lite's parser ends a literal
    at a raw newline or carriage return and knows the escapes \\\\, \\", \\n and \\r; every other
    character (tabs, control characters, any Unicode) is taken as it is.
    """
    return '"' + value.translate(_LITERAL_ESCAPES) + '"'


def in_filter(field_name: str, values: Sequence[str]) -> str:
    return f"{field_name} in [{', '.join(quote(v) for v in values)}]"


# Pattern escapes of milvus-lite's ``like``: \% and \_ are a literal % and _. A literal backslash cannot be
# written (milvus-lite 3.2.2 passes \\s on as the regex \s, whitespace), so it becomes _, any one character:
# a search for a\b also finds a/b.
_LIKE_ESCAPES = str.maketrans({"\\": "_", "%": "\\%", "_": "\\_"})


def contains_filter(field_name: str, text: str) -> str:
    """A filter for rows whose ``field_name`` contains ``text`` (a ``like "%...%"`` pattern): ``%`` and ``_``
    match themselves, not any characters; a backslash matches any one character (see ``_LIKE_ESCAPES``)."""
    return f"{field_name} like {quote('%' + text.translate(_LIKE_ESCAPES) + '%')}"


@dataclass
class StoredDocument:
    """What the collection holds for one document: its chunks' ids, indexes and recorded metadata (in the same
    order). The store gives the metadata back as written; what its keys mean is the writer's business."""

    doc_id: str
    source: str
    title: str
    chunk_ids: list[str] = field(default_factory=list)
    chunk_indexes: list[int] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)

    @property
    def chunks(self) -> int:
        return len(self.chunk_ids)


class KnowledgeBase:
    """One collection: upsert chunks, delete documents, list what is stored, search by one vector field.

    The only way to a collection's data: nothing outside ``rag.store`` calls the pymilvus client.
    """

    def __init__(self, client: MilvusClient, name: str, model: ModelInfo) -> None:
        self._client = client
        self.name = name
        self.model = model

    def upsert(self, records: Iterable[ChunkRecord]) -> int:
        rows = [r.to_row() for r in records]
        for start in range(0, len(rows), WRITE_BATCH):
            self._client.upsert(self.name, rows[start : start + WRITE_BATCH])
        return len(rows)

    def flush(self) -> None:
        """Seal what was written (a Milvus server indexes sealed segments; searches see unsealed ones too)."""
        self._client.flush(self.name)

    def search(
        self, field_name: str, vector: Any, limit: int, filter_expr: str = "", output_fields: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """The ``limit`` chunks whose ``field_name`` vector ("dense" or "sparse") has the largest inner product
        with ``vector``, best first, among those matching ``filter_expr``: each row's ``output_fields`` and its
        ``id``. A search Milvus refuses (server gone, bad filter) is a StoreUnavailableError naming the field."""
        try:
            hits = self._client.search(
                self.name, data=[vector], anns_field=field_name, limit=limit, filter=filter_expr,
                output_fields=list(output_fields), search_params={"metric_type": "IP"},
            )
        except MilvusException as exc:
            message = (getattr(exc, "message", None) or str(exc)).strip().splitlines()[0][:300]
            raise StoreUnavailableError(
                f"The {field_name} search on knowledge base {self.name!r} failed ({message}). "
                "Check that the Milvus server is running and that the filters name existing fields."
            ) from None
        return [dict(hit["entity"], id=hit["id"]) for hit in hits[0]] if hits else []

    def rows(self, filter_expr: str, fields: Sequence[str], limit: int | None = None) -> list[dict[str, Any]]:
        """Stored rows matching ``filter_expr`` (all rows when empty) with ``fields``, at most ``limit``."""
        out: list[dict[str, Any]] = []
        for row in self._scan(filter_expr, list(fields)):
            if limit is not None and len(out) >= limit:
                break
            out.append(row)
        return out

    def page(self, filter_expr: str, fields: Sequence[str], limit: int, offset: int = 0) -> list[dict[str, Any]]:
        """At most ``limit`` rows matching ``filter_expr`` after skipping ``offset``, in Milvus' own order (stable
        between calls on unchanged data). Milvus answers only ``offset + limit <= 16384`` (MILVUS_MAX_LIMIT)."""
        if offset + limit > MILVUS_MAX_LIMIT:
            raise InvalidInputError(
                f"Milvus pages at most {MILVUS_MAX_LIMIT} rows deep (offset {offset} + limit {limit}); narrow the "
                "search with a source or words instead."
            )
        return self._client.query(self.name, filter=filter_expr, output_fields=list(fields), limit=limit,
                                  offset=offset)

    def layout(self) -> dict[str, Any]:
        """The collection's fields (name -> Milvus type) and vector indexes (field -> index type and metric)."""
        description = self._client.describe_collection(self.name)
        indexes = {}
        for name in ("dense", "sparse"):
            index = self._client.describe_index(self.name, name)
            indexes[name] = {"index_type": index.get("index_type"), "metric_type": index.get("metric_type")}
        return {"fields": {f["name"]: f["type"].name for f in description["fields"]}, "indexes": indexes}

    def delete_ids(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), FILTER_BATCH):
            self._client.delete(self.name, ids=list(ids[start : start + FILTER_BATCH]))

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        for start in range(0, len(doc_ids), FILTER_BATCH):
            self._client.delete(self.name, filter=in_filter("doc_id", doc_ids[start : start + FILTER_BATCH]))

    def count(self) -> int:
        result = self._client.query(self.name, filter="", output_fields=["count(*)"])
        return int(result[0]["count(*)"])

    def _scan(self, filter_expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        iterator = self._client.query_iterator(self.name, batch_size=1000, filter=filter_expr, output_fields=fields)
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
