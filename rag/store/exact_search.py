"""The in-process exact search of an embedded knowledge base, and how it stays equal to what Milvus holds.

Milvus is the system of record. The :class:`ExactIndex` of a collection is read from it on the first search and
shared by every :class:`rag.store.KnowledgeBase` object on that collection in this process. It is never stale:

- every write through :class:`KnowledgeBase` (upsert, delete) first records a new *write stamp* in the
  collection's properties (``ragscope.write_stamp``, a random token) and then, in this process, patches the index
  with the rows it wrote or deleted and records that the index matches the new stamp;
- before each search the stamp stored with the collection is read again (and the row count, when this process
  may have let another one write: its embedded database was released since the last check): a stamp or count
  that differs from the index's means another process wrote (e.g. ``rag-ingest`` while this one had closed the
  database), and the index is read again from Milvus.

Writes and searches on one collection take turns (one lock), so a search never sees half a write. A knowledge
base of more than ``max_chunks`` chunks has no index (its memory is freed): Milvus' own search serves it.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from rag.store.exact_index import ExactIndex

Reader = Callable[[], Iterable[dict[str, Any]]]

_REGISTRY: dict[tuple[str, str], ExactSearch] = {}
_REGISTRY_LOCK = threading.Lock()
# Bumped each time this process releases an embedded database: another process may write to it meanwhile.
_RELEASES: Counter[str] = Counter()


def new_stamp() -> str:
    return uuid.uuid4().hex


def released(location: str) -> None:
    """This process let go of the embedded database at ``location``: check row counts again on the next search."""
    with _REGISTRY_LOCK:
        _RELEASES[location] += 1


def forget(location: str, name: str) -> None:
    """The collection was dropped: free its index."""
    with _REGISTRY_LOCK:
        _REGISTRY.pop((location, name), None)


class ExactSearch:
    """One collection's index, its write stamp, and the lock that makes writes and searches take turns."""

    def __init__(self, location: str, name: str) -> None:
        self.location = location
        self.name = name
        self.lock = threading.RLock()
        self.index: ExactIndex | None = None
        self.stamp: str | None = None  # the write stamp the index equals
        self.checked_release = -1  # _RELEASES[location] when the row count was last compared
        self.oversize: tuple[str, int] | None = None  # (stamp, chunks) of a collection found over a budget
        self.builds = 0  # times the index was read from Milvus (tests and benchmarks read it)

    @classmethod
    def of(cls, location: str, name: str) -> ExactSearch:
        """The shared exact search of collection ``name`` of the embedded database at ``location``."""
        with _REGISTRY_LOCK:
            found = _REGISTRY.get((location, name))
            if found is None:
                found = _REGISTRY[(location, name)] = cls(location, name)
            return found

    def current(self, stamp: str, count: Callable[[], int], read: Reader, dim: int,
                max_chunks: int) -> ExactIndex | None:
        """The index equal to the collection whose write stamp is ``stamp`` (read again from Milvus by ``read``
        when stale), or None when the collection holds more than ``max_chunks`` chunks. Call with ``lock`` held."""
        if max_chunks <= 0:
            return None
        if self.index is None and self.oversize is not None and self.oversize[0] == stamp \
                and self.oversize[1] > max_chunks:
            return None  # known to be too large, unchanged since
        release = _RELEASES[self.location]
        if self.index is not None and self.stamp == stamp and release != self.checked_release:
            if count() != len(self.index):  # written meanwhile by a process that records no stamp
                self.index = None
            self.checked_release = release
        if self.index is None or self.stamp != stamp:
            self.index = None  # free the old one before reading the new one
            total = count()
            self.checked_release = release
            if total > max_chunks:
                self.stamp, self.oversize = None, (stamp, total)
                return None
            index = ExactIndex(dim)
            batch: list[dict[str, Any]] = []
            for row in read():
                batch.append(row)
                if len(batch) >= 4096:
                    index.add(batch)
                    batch = []
            index.add(batch)
            self.index, self.stamp = index, stamp
            self.builds += 1
        if len(self.index) > max_chunks:  # grown past the budget: free the memory, Milvus searches
            self.oversize = (stamp, len(self.index))
            self.index, self.stamp = None, None
        return self.index

    @contextmanager
    def writing(self, stamp_now: Callable[[], str], record: Callable[[str], None]) -> Iterator[ExactIndex | None]:
        """Around a write: records a new stamp first, then yields the index to patch (None: nothing to patch).

        The index is patched only when it was equal to the collection before the write; after a failed write it
        is dropped (read again on the next search)."""
        with self.lock:
            patchable = self.index is not None and self.stamp == stamp_now()
            stamp = new_stamp()
            record(stamp)
            if not patchable:
                self.index, self.stamp = None, None
                yield None
                return
            try:
                yield self.index
            except BaseException:
                self.index, self.stamp = None, None
                raise
            self.stamp = stamp
