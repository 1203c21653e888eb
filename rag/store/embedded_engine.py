"""Writes to (and whole-collection reads of) an embedded (milvus-lite) knowledge base straight in milvus-lite's engine.

pymilvus serves a ``.db`` URI through milvus-lite's gRPC server, started in this process by milvus-lite's
``server_manager``. A write through the client converts every row to protobuf in Python (pymilvus), sends it
over the loopback, and the server decodes it back into the same dicts before calling the engine's
``Collection.upsert`` (milvus-lite's public API: ``from milvus_lite import Collection``). Calling that method
ourselves does the same validation, WAL and memtable work without the two conversions. Reading every row of a
collection (a re-ingest's look-up of what is stored) and the exact index's first read skip the same two
conversions the other way. ``python benchmarks/embedded_engine.py`` (engine / client, 4,000 rows of 32-d:
upsert 0.36x, listing the documents 0.70x, the index read 0.49x; 10,000 rows of 1024-d: 0.41x, 0.84x, 0.46x).
Searches, filtered reads, deletes by filter and flushes go through the client.

The engine object is found through the server manager's table of running servers. A milvus-lite whose
manager keeps no such table, or any other surprise, gives None: the caller then writes through the client,
as before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pymilvus.exceptions import MilvusException

DEFAULT_DATABASE = "default"
_SPARSE_PAIR = np.dtype([("index", "<u4"), ("weight", "<f4")])  # Milvus' sparse row format, as pymilvus packs it


def _sparse(packed: bytes | str) -> dict[int, float]:
    pairs = np.frombuffer(packed if isinstance(packed, bytes) else packed.encode(), dtype=_SPARSE_PAIR)
    return dict(zip(pairs["index"].tolist(), pairs["weight"].tolist(), strict=True))


_DECODERS: dict[str, Callable[[Any], Any]] = {"JSON": json.loads, "SPARSE_FLOAT_VECTOR": _sparse}


class EmbeddedEngine:
    """Upserts, deletes by id and reads of every row, on one collection of an embedded milvus-lite, in this
    process."""

    def __init__(self, database: Any, name: str, db_name: str) -> None:
        self._database = database
        self._name = name
        self._db_name = db_name

    @classmethod
    def of(cls, location: str, name: str, db_name: str = "") -> EmbeddedEngine | None:
        """The engine of collection ``name`` of the embedded database at ``location`` (already opened by a
        pymilvus client in this process), or None when milvus-lite's engine cannot be reached."""
        try:
            from milvus_lite.server_manager import server_manager_instance

            entry = server_manager_instance._servers.get(os.path.abspath(location))
            if entry is None:
                return None
            engine = cls(entry[1], name, db_name or DEFAULT_DATABASE)
            engine._collection()
            return engine
        except Exception:
            return None

    def _collection(self) -> Any:
        """Looked up on every call (a dictionary read): a collection dropped meanwhile is an error, not a write."""
        return self._database.get_collection(self._name, database_name=self._db_name)

    def upsert(self, rows: list[dict[str, Any]]) -> None:
        self._call("upsert", rows)

    def delete(self, ids: Sequence[str]) -> None:
        self._call("delete", list(ids))

    def rows(self, fields: Sequence[str], ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every row (or the rows of ``ids``, in their order, those deleted left out) with ``fields`` and the id,
        as the client's query returns them: the engine keeps JSON as text and sparse vectors packed, which the gRPC
        server sends as they are and pymilvus decodes; so does this."""
        if ids is None:
            rows = self._call("query", None, output_fields=list(fields))
        else:
            rows = self._call("get", list(ids), output_fields=list(fields))
        kinds = {f.name: f.dtype.name for f in self._collection().schema.fields if f.name in fields}
        decoders = [(name, _DECODERS[kind]) for name, kind in kinds.items() if kind in _DECODERS]
        for row in rows:
            for name, decode in decoders:
                if isinstance(row.get(name), (str, bytes)):
                    row[name] = decode(row[name])
        return rows

    def _call(self, method: str, argument: Any, **options: Any) -> Any:
        """Engine errors (a row the schema refuses, a dropped collection) become the MilvusException the client
        would have raised."""
        from milvus_lite import MilvusLiteError

        try:
            return getattr(self._collection(), method)(argument, **options)
        except MilvusLiteError as exc:
            raise MilvusException(message=str(exc)) from exc
