"""Connection to Milvus: a local path opens embedded milvus-lite, http://host:port a server. Same code for both."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path

from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from rag.config import MilvusSettings
from rag.errors import KnowledgeBaseNotFoundError, ModelMismatchError, StoreLockedError, StoreUnavailableError
from rag.store.embedded_engine import EmbeddedEngine
from rag.store.exact_search import ExactSearch, forget, new_stamp, released
from rag.store.guard import Guarded, unavailable_message
from rag.store.knowledge_base import KnowledgeBase
from rag.store.model_info import ModelInfo
from rag.store.schema import (
    PROP_DIM,
    PROP_FINGERPRINT,
    PROP_MODEL,
    PROP_SCHEMA,
    PROP_WRITE_STAMP,
    SCHEMA_VERSION,
    build_index_params,
    build_schema,
)

SERVER_PREFIXES = ("http://", "https://", "tcp://", "unix:")

# Embedded databases open in this process, with the number of MilvusStore objects using each. milvus-lite keeps
# its in-process server (and the data directory's lock) until released: the last store to close releases it, so
# that another process (e.g. `rag-ingest` after a test or a UI session) can open the directory.
_EMBEDDED_USERS: Counter[str] = Counter()
_EMBEDDED_LOCK = threading.Lock()


def is_server_uri(uri: str) -> bool:
    return uri.startswith(SERVER_PREFIXES)


def _caused_by(exc: BaseException, class_name: str) -> bool:
    visited: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in visited:  # exception chains can loop
        if type(current).__name__ == class_name:
            return True
        visited.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _held_by_another_process(data_dir: Path) -> bool:
    """milvus-lite holds an flock on DATA_DIR/LOCK while a process has the database open."""
    lock = data_dir / "LOCK"
    if not lock.exists():
        return False
    import fcntl

    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def locked_message(path: str) -> str:
    return (
        f"The knowledge base at {path} is open in another process, e.g. the UI; stop it or run a Milvus "
        f"server / `milvus-lite server --data-dir {path} --host 127.0.0.1 --port 19530` and set milvus.uri "
        "(RAG_MILVUS__URI=http://127.0.0.1:19530) so that several processes can share it."
    )


class MilvusStore:
    """Knowledge bases (one Milvus collection each) on one Milvus instance."""

    def __init__(self, settings: MilvusSettings) -> None:
        self.uri = settings.uri
        self.embedded = not is_server_uri(settings.uri)
        uri = settings.uri
        if self.embedded:
            if not uri.endswith(".db"):
                raise StoreUnavailableError(
                    f"milvus.uri {uri!r} is neither a server URI (http://host:19530) nor a local path ending "
                    "in .db (embedded milvus-lite, e.g. ./data/milvus.db)."
                )
            path = Path(uri).expanduser().resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            uri = str(path)
            self.location = uri
        else:
            self.location = settings.uri
        # pymilvus logs every failed RPC and milvus-lite's in-process gRPC server logs calls it does not
        # implement (the query iterator falls back on its own); errors reach the user as exceptions instead.
        for logger in ("pymilvus", "grpc._server", "milvus_lite"):
            logging.getLogger(logger).setLevel(logging.CRITICAL)
        kwargs: dict[str, object] = {"token": settings.token} if settings.token else {}
        # No keepalive pings while idle: a Python gRPC server (milvus-lite, embedded or `milvus-lite server`)
        # answers pings more often than every 5 minutes with GOAWAY "too_many_pings", failing the next call.
        kwargs["grpc_options"] = {"grpc.keepalive_permit_without_calls": False, "grpc.keepalive_time_ms": 60_000}
        if settings.db_name:
            kwargs["db_name"] = settings.db_name
        if not self.embedded:  # its own channel: a store made after the server restarts connects at once
            kwargs["dedicated"] = True
        self.db_name = settings.db_name
        self._closed = False
        try:
            client = MilvusClient(uri=uri, timeout=15, **kwargs)
            # Server connections: a server that stops mid-work gives a StoreUnavailableError on any operation.
            self._client = client if self.embedded else Guarded(client, uri)
            if self.embedded:
                with _EMBEDDED_LOCK:
                    _EMBEDDED_USERS[uri] += 1
        except Exception as exc:
            if _caused_by(exc, "DataDirLockedError") or (self.embedded and _held_by_another_process(Path(uri))):
                raise StoreLockedError(locked_message(uri)) from None
            if self.embedded:
                raise StoreUnavailableError(f"Could not open the embedded Milvus database at {uri}: {exc}") from None
            raise StoreUnavailableError(unavailable_message(uri, _short(exc))) from None

    def close(self) -> None:
        """Close the connection; the last store of an embedded database also releases its lock."""
        if self._closed:
            return
        self._closed = True
        self._client.close()
        if not self.embedded:
            return
        with _EMBEDDED_LOCK:
            _EMBEDDED_USERS[self.location] -= 1
            last = _EMBEDDED_USERS[self.location] <= 0
            if last:
                del _EMBEDDED_USERS[self.location]
        if last:
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self.location)
            released(self.location)  # another process may write now: exact searches check row counts again

    def __enter__(self) -> MilvusStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> bool:
        """Whether the database answers now (a server that stopped does not)."""
        try:
            self._client.list_collections()
        except Exception:
            return False
        return True

    def collections(self) -> list[str]:
        """Names of all collections in the database, knowledge bases of this project or not."""
        return sorted(self._client.list_collections())

    def knowledge_bases(self) -> list[str]:
        """Names of the collections that are knowledge bases of this project."""
        names = []
        for name in self.collections():
            props = self._client.describe_collection(name).get("properties", {})
            if PROP_DIM in props:
                names.append(name)
        return names

    def exists(self, name: str) -> bool:
        return self._client.has_collection(name)

    def open(self, name: str, model: ModelInfo | None = None, *, create: bool = False) -> KnowledgeBase:
        """Open knowledge base ``name``; with ``model``, check (or on create, record) the model that fills it."""
        if not self._client.has_collection(name):
            if not create or model is None:
                known = ", ".join(self.knowledge_bases()) or "none yet"
                raise KnowledgeBaseNotFoundError(
                    f"Knowledge base {name!r} does not exist at {self.location} (knowledge bases: {known}). "
                    "Create it by ingesting documents: rag-ingest PATH --kb NAME."
                )
            self._create(name, model)
        props = self._client.describe_collection(name).get("properties", {})
        if PROP_DIM not in props:
            raise ModelMismatchError(
                f"Collection {name!r} at {self.location} was not created by this project (it records no "
                "embedding model); use another knowledge-base name."
            )
        if not self._client.list_indexes(name):  # a creation cut short between its two calls
            self._create_indexes(name)
        recorded = ModelInfo(props.get(PROP_MODEL, "?"), props.get(PROP_FINGERPRINT, "?"), int(props[PROP_DIM]))
        if model is not None and (recorded.dim != model.dim or recorded.fingerprint != model.fingerprint):
            raise ModelMismatchError(
                f"Knowledge base {name!r} was built with embedding model {recorded.name!r} "
                f"({recorded.dim} dimensions, fingerprint {recorded.fingerprint}) but the current model is "
                f"{model.name!r} ({model.dim} dimensions, fingerprint {model.fingerprint}). Vectors from "
                "different models cannot be compared: set embedding.model back to the original model, or "
                f"rebuild the knowledge base (rag-ingest kb drop {name}, then ingest again), or use another --kb."
            )
        self._client.load_collection(name)
        engine = EmbeddedEngine.of(self.location, name, self.db_name) if self.embedded else None
        exact = ExactSearch.of(self.location, name, embedded=self.embedded)
        return KnowledgeBase(self._client, name, recorded, exact, embedded=self.embedded, engine=engine)

    def _create(self, name: str, model: ModelInfo) -> None:
        try:
            self._client.create_collection(
                name,
                schema=build_schema(model.dim),
                properties={
                    PROP_MODEL: model.name, PROP_FINGERPRINT: model.fingerprint,
                    PROP_DIM: str(model.dim), PROP_SCHEMA: SCHEMA_VERSION, PROP_WRITE_STAMP: new_stamp(),
                },
            )
        except MilvusException as exc:
            raise StoreUnavailableError(f"Could not create knowledge base {name!r}: {_short(exc)}") from None
        self._create_indexes(name)

    def _create_indexes(self, name: str) -> None:
        """The vector indexes of a new (empty) collection. Not waited for: pymilvus' wait polls every 0.5 s per
        index (a second of every new knowledge base), and an empty collection's index has nothing to build."""
        try:
            self._client.create_index(name, build_index_params(self._client), sync=False)
        except MilvusException as exc:
            raise StoreUnavailableError(f"Could not index knowledge base {name!r}: {_short(exc)}") from None

    def drop(self, name: str) -> None:
        """Delete a knowledge base and all its chunks."""
        self.open(name)
        self._client.drop_collection(name)
        forget(self.location, name, embedded=self.embedded)


def _short(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return message.strip().splitlines()[0][:300] if message.strip() else type(exc).__name__
