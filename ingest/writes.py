"""One group's Milvus writes running in a background thread while the pipeline reads, chunks and encodes the next.

Writes stay in order (one at a time, each group after the previous one), so ingest keeps its crash-safe write
order. What a finished write reports (file results, progress events) runs in the caller's thread, when the
next write is submitted or on ``settle``: progress listeners (Rich, Streamlit) are only called from there.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class WriteQueue:
    """Runs each submitted write after the previous one, in one background thread (or inline)."""

    def __init__(self, background: bool) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-write") if background else None
        self._pending: tuple[Future[None], Callable[[], None]] | None = None

    def __enter__(self) -> WriteQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # a write in flight finishes even when the run stops with an error

    def submit(self, write: Callable[[], None], done: Callable[[], None]) -> None:
        """Start ``write`` once the previous write is done; ``done`` runs in this thread after ``write``."""
        self.settle()
        if self._pool is None:
            write()
            done()
        else:
            self._pending = (self._pool.submit(write), done)

    def settle(self) -> None:
        """Wait for the write in flight, raise its error if it failed, and run its ``done``."""
        if self._pending is not None:
            future, done = self._pending
            self._pending = None
            future.result()
            done()
