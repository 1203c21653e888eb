"""Reading and writing the chunks of one knowledge base (one Milvus collection)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from rag.config import MILVUS_MAX_LIMIT
from rag.errors import InvalidInputError, StoreUnavailableError
from rag.store.embedded_engine import EmbeddedEngine
from rag.store.exact_index import ATTRS, ROW_FIELDS, ChunkScores, ExactIndex
from rag.store.exact_search import ExactSearch, new_stamp
from rag.store.model_info import ModelInfo
from rag.store.schema import PROP_WRITE_STAMP, ChunkRecord, decode_sparse

WRITE_BATCH = 256
FILTER_BATCH = 200
READ_BATCH = 2048  # rows per message when the exact index reads a collection (~10 MB at 1024-d)
READ_TIMEOUT_S = 900  # per call of that read: milvus-lite lists 100k ids in tens of seconds on a busy machine


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


class RowFilter(Protocol):
    """A search filter both as a Milvus expression and as a test on one stored row (source, metadata), so the
    in-process exact search applies it as Milvus does (rag.retrieval.filters.SearchFilters is one)."""

    def expression(self) -> str: ...

    def matches(self, row: Mapping[str, Any]) -> bool: ...


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

    The only way to a collection's data: nothing outside ``rag.store`` calls the pymilvus client. ``exact``: the
    in-process exact search of an embedded collection (:mod:`rag.store.exact_search`), None on a server. ``engine``:
    milvus-lite's engine for upserts, deletes by id and whole-collection reads (:mod:`rag.store.embedded_engine`),
    None to do all through the client.
    """

    def __init__(self, client: MilvusClient, name: str, model: ModelInfo, exact: ExactSearch | None = None, *,
                 embedded: bool = True, engine: EmbeddedEngine | None = None) -> None:
        self._client = client
        self.engine = engine
        self.name = name
        self.model = model
        self.exact = exact
        self.embedded = embedded  # searched exactly in process when within budget (a server: Milvus always)

    def upsert(self, records: Iterable[ChunkRecord]) -> int:
        records = list(records)
        if not records:
            return 0
        rows = [r.to_row() for r in records]
        with self._writing() as index:
            for start in range(0, len(rows), WRITE_BATCH):
                if self.engine is not None:
                    self.engine.upsert(rows[start : start + WRITE_BATCH])
                else:
                    self._client.upsert(self.name, rows[start : start + WRITE_BATCH])
            if index is not None:
                index.add({**{name: row[name] for name in ("id", *ATTRS)}, "dense": r.dense, "sparse": r.sparse}
                          for r, row in zip(records, rows, strict=True))  # as stored (a title cut to its limit)
        return len(rows)

    def write_stamp(self) -> str:
        """The token each process's writes replace (rag.store.exact_search); "" for a collection never stamped."""
        return str(self._client.describe_collection(self.name).get("properties", {}).get(PROP_WRITE_STAMP, ""))

    def record_write_stamp(self, stamp: str) -> None:
        self._client.alter_collection_properties(self.name, {PROP_WRITE_STAMP: stamp})

    @contextmanager
    def _writing(self) -> Iterator[ExactIndex | None]:
        """Around every write: the write stamp replaced first when due, then the in-process index to patch."""
        if self.exact is None:
            self.record_write_stamp(new_stamp())
            yield None
            return
        with self.exact.writing(self) as index:
            yield index

    def hold_exact(self, exact_max_chunks: int) -> bool:
        """Keep the exact index current through this process' writes when it is had without reading Milvus (an
        embedded collection that is empty, or has a matching snapshot); whether it is. :meth:`save_exact` after."""
        if self.exact is None or not self.embedded:
            return False
        with self.exact.lock:
            return self.exact.held(self, self.model.dim, exact_max_chunks) is not None

    def save_exact(self) -> None:
        """Leave a snapshot of the exact index for the next process, when this one's writes changed it."""
        if self.exact is not None and self.embedded:
            self.exact.save()

    def flush(self) -> None:
        """Seal what was written (a Milvus server indexes sealed segments; searches see unsealed ones too)."""
        self._client.flush(self.name)

    def search(
        self, field_name: str, vector: Any, limit: int, filter_expr: str | RowFilter = "",
        output_fields: Sequence[str] = (), *, params: Mapping[str, Any] | None = None, exact_max_chunks: int = 0,
        lazy: bool = False,
    ) -> list[dict[str, Any]]:
        """The ``limit`` chunks whose ``field_name`` vector ("dense" or "sparse") has the largest inner product
        with ``vector``, best first, among those matching ``filter_expr``: each row's ``output_fields`` and its
        ``id``. A search Milvus refuses (server gone, bad filter) is a StoreUnavailableError naming the field.

        An embedded collection of at most ``exact_max_chunks`` chunks is searched exactly in this process (ties
        by id; the filter then has to be a :class:`RowFilter`, or empty); otherwise Milvus searches, with the
        index's search ``params`` (an HNSW ``ef`` is raised to ``limit`` when smaller). ``lazy``: an exact search
        leaves out the fields its index does not hold (text), for :meth:`fill` to read for
        the rows the caller keeps; Milvus' search returns every field it is asked for either way."""
        expr = filter_expr if isinstance(filter_expr, str) else filter_expr.expression()
        matches = None if isinstance(filter_expr, str) or not expr else filter_expr.matches
        if self.exact is not None and self.embedded and exact_max_chunks > 0 and (matches is not None or not expr):
            found = self._exact_search(field_name, vector, limit, expr, matches, exact_max_chunks,
                                       output_fields if not lazy else [f for f in output_fields if f in ROW_FIELDS])
            if found is not None:
                return found
        tuning = dict(params or {})
        if "ef" in tuning:
            tuning["ef"] = max(int(tuning["ef"]), limit)
        try:
            hits = self._client.search(
                self.name, data=[vector], anns_field=field_name, limit=limit, filter=expr,
                output_fields=list(output_fields), search_params={"metric_type": "IP", "params": tuning},
            )
        except MilvusException as exc:
            message = (getattr(exc, "message", None) or str(exc)).strip().splitlines()[0][:300]
            raise StoreUnavailableError(
                f"The {field_name} search on knowledge base {self.name!r} failed ({message}). "
                "Check that the Milvus server is running and that the filters name existing fields."
            ) from None
        return [dict(hit["entity"], id=hit["id"]) for hit in hits[0]] if hits else []

    def _exact_search(self, field_name: str, vector: Any, limit: int, expr: str,
                      matches: Callable[[Mapping[str, Any]], bool] | None, max_chunks: int,
                      output_fields: Sequence[str]) -> list[dict[str, Any]] | None:
        """The exact top ``limit`` rows from the in-process index (fields it does not hold read from Milvus); None
        when the collection is over budget."""
        assert self.exact is not None
        with self.exact.lock:
            index = self.exact.current(self, self.model.dim, max_chunks)
            if index is None:
                return None
            valid = index.mask(expr, matches)
            if field_name == "dense":
                ids = index.dense_top(vector, limit, valid)
            else:
                ids = index.sparse_top(vector, limit, valid)
            held = index.rows(ids, [f for f in output_fields if f in ROW_FIELDS])
        rest = [f for f in output_fields if f not in ROW_FIELDS]
        if not rest:
            return held
        stored = self.rows_by_id(ids, rest)  # text, title, ...: read from Milvus, not kept in memory
        return [{**row, **stored[row["id"]]} for row in held if row["id"] in stored]

    def exact_scores(self, dense: Any, sparse: Mapping[int, float], filter_expr: str | RowFilter = "", *,
                     exact_max_chunks: int = 0) -> ChunkScores | None:
        """Every chunk's exact dense and sparse score for a query, and which ``filter_expr`` keeps, from the
        in-process index: what a search's ranks at any depth need. None when :meth:`search` would not search
        exactly (a server, over ``exact_max_chunks``, the index still being read, an expression-only filter)."""
        expr = filter_expr if isinstance(filter_expr, str) else filter_expr.expression()
        matches = None if isinstance(filter_expr, str) or not expr else filter_expr.matches
        if self.exact is None or not self.embedded or exact_max_chunks <= 0 or (expr and matches is None):
            return None
        with self.exact.lock:
            index = self.exact.current(self, self.model.dim, exact_max_chunks)
            return None if index is None else index.scores(dense, sparse, index.mask(expr, matches))

    def document_chunk_ids(self, doc_id: str, *, exact_max_chunks: int = 0) -> list[str] | None:
        """The ids of a document's chunks from the in-process index (any order); None when there is none to ask (as
        for :meth:`exact_scores`): then a filter on ``doc_id`` finds them."""
        if self.exact is None or not self.embedded or exact_max_chunks <= 0:
            return None
        with self.exact.lock:
            index = self.exact.current(self, self.model.dim, exact_max_chunks)
            return None if index is None else index.document_ids(doc_id)

    def fill(self, rows: Sequence[dict[str, Any]], output_fields: Sequence[str]) -> None:
        """Add to each of ``rows`` (search hits) the ``output_fields`` it lacks, read from Milvus in one query for
        all of them; a row whose chunk was deleted meanwhile stays without them."""
        lacking = [row for row in rows if any(f not in row for f in output_fields)]
        missing = [f for f in output_fields if any(f not in row for row in lacking)]
        stored = self.rows_by_id([row["id"] for row in lacking], missing)
        for row in lacking:
            found = stored.get(row["id"])
            if found is not None:
                row.update((name, value) for name, value in found.items() if name not in row)

    def index_rows(self) -> Iterator[dict[str, Any]]:
        """Every chunk with what the exact index keeps of it. Embedded only: one query for the ids, then rows by id
        in batches (milvus-lite's query iterator re-reads the collection for every page: several times slower)."""
        if self.engine is not None:  # milvus-lite's engine in this process: no protobuf conversion of the vectors
            ids = [row["id"] for row in self.engine.rows(["id"])]
        else:
            ids = [row["id"] for row in self._client.query(self.name, filter='id != ""', output_fields=["id"],
                                                           timeout=READ_TIMEOUT_S)]
        for start in range(0, len(ids), READ_BATCH):
            batch = ids[start : start + READ_BATCH]
            if self.engine is not None:
                rows = self.engine.rows(ROW_FIELDS, ids=batch)
            else:
                rows = self._client.query(self.name, ids=batch, output_fields=ROW_FIELDS, timeout=READ_TIMEOUT_S)
            for row in rows:
                row["sparse"] = decode_sparse(row["sparse"])
                yield row

    def rows_by_id(self, ids: Sequence[str], output_fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Rows of ``ids`` with ``output_fields`` (and ``id``) by id; ids deleted meanwhile are not there. A look-up
        by primary key: milvus-lite answers it in milliseconds, where a filter (``id == ...``) scans every row."""
        if not ids:
            return {}
        return {row["id"]: row for row in self._client.query(self.name, ids=list(ids),
                                                             output_fields=list(output_fields))}

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
        if not ids:
            return
        with self._writing() as index:
            for start in range(0, len(ids), FILTER_BATCH):
                if self.engine is not None:
                    self.engine.delete(ids[start : start + FILTER_BATCH])
                else:
                    self._client.delete(self.name, ids=list(ids[start : start + FILTER_BATCH]))
            if index is not None:
                index.remove_ids(ids)

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        with self._writing() as index:
            for start in range(0, len(doc_ids), FILTER_BATCH):
                self._client.delete(self.name, filter=in_filter("doc_id", doc_ids[start : start + FILTER_BATCH]))
            if index is not None:
                index.remove_documents(doc_ids)

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
        self, doc_ids: Sequence[str] | None = None, *, sources: Sequence[str] | None = None, exact_max_chunks: int = 0
    ) -> dict[str, StoredDocument]:
        """Stored documents keyed by doc_id: all of them, or those among ``doc_ids`` or from ``sources``. All of
        them come from the exact index when it is had without reading Milvus (:meth:`hold_exact`)."""
        fields = ["id", "doc_id", "source", "title", "chunk_index", "metadata"]
        if doc_ids is None and sources is None:
            if self.exact is not None and self.embedded and exact_max_chunks > 0:
                with self.exact.lock:
                    index = self.exact.held(self, self.model.dim, exact_max_chunks)
                    if index is not None:
                        return self._collect(index.rows(index.live_ids(), fields))
            if self.engine is not None:
                return self._collect(self.engine.rows(fields))
            if self.embedded:  # one query: milvus-lite's query iterator re-reads the collection for every page
                return self._collect(self._client.query(self.name, filter='id != ""', output_fields=fields,
                                                        timeout=READ_TIMEOUT_S))
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
