"""A Milvus server that stops answering, on any operation, as one StoreUnavailableError that says what to start."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

import grpc
from pymilvus.client.types import Status
from pymilvus.exceptions import MilvusException, MilvusUnavailableException

from rag.errors import StoreUnavailableError

DEFAULT_PORT = 19530
_DOWN_CODES = (grpc.StatusCode.UNAVAILABLE,)


def unavailable_message(uri: str, reason: str = "") -> str:
    """What to tell a user whose Milvus server at ``uri`` cannot be reached: the server and how to start it."""
    port = urlsplit(uri).port or DEFAULT_PORT
    why = f" ({reason})" if reason else ""
    return (
        f"The Milvus server at {uri} is not reachable{why}: it is stopped or was never started. Start it "
        f"(`docker compose up -d milvus`, or `milvus-lite server --data-dir ./data/milvus.db --host 127.0.0.1 "
        f"--port {port}` with the data directory it used before), then try again: what was already stored is kept, "
        "and an interrupted ingest completes when run again. Or set milvus.uri to a local path such as "
        "./data/milvus.db for the embedded database."
    )


def is_connection_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the server could not be reached."""
    visited: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in visited:  # exception chains can loop
        visited.add(id(current))
        if isinstance(current, MilvusUnavailableException | ConnectionError):
            return True
        if isinstance(current, MilvusException) and current.code == Status.CONNECT_FAILED:
            return True
        if isinstance(current, grpc.RpcError) and getattr(current, "code", lambda: None)() in _DOWN_CODES:
            return True
        current = current.__cause__ or current.__context__
    return False


class Guarded:
    """A pymilvus object (MilvusClient, or an iterator it returns) whose calls raise StoreUnavailableError, naming
    the server, when the server cannot be reached; every other error passes through unchanged."""

    def __init__(self, target: Any, uri: str) -> None:
        self._target = target
        self._uri = uri

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = attribute(*args, **kwargs)
            except Exception as exc:
                if is_connection_failure(exc):
                    raise StoreUnavailableError(unavailable_message(self._uri)) from exc
                raise
            return Guarded(result, self._uri) if name.endswith("_iterator") else result

        return call
