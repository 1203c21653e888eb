"""The in-process exact search of an embedded knowledge base, and how it stays equal to what Milvus holds.

Milvus is the system of record. The :class:`ExactIndex` of a collection is read from it on the first search and
shared by every :class:`rag.store.KnowledgeBase` object on that collection in this process. It is never stale:

- every write through :class:`KnowledgeBase` (upsert, delete) patches the index in this process with the rows it
  wrote or deleted;
- another process can write only while this one does not hold the embedded database (milvus-lite locks its data
  directory): so after each time this process let the database go (its last store closed), the next search or
  write reads the collection's *write stamp* and row count again, and reads the index again from Milvus when
  either differs from the index's;
- the write stamp (``ragscope.write_stamp`` in the collection's properties, a random token) is replaced by the
  first write of each process while it holds the database (embedded or through a server), before that write:
  another process, holding the database later, sees a new stamp. The row count catches a writer that records no
  stamp (raw pymilvus inserts).

Writes and searches on one collection take turns (one lock), so a search never sees half a write. A knowledge
base of more than ``max_chunks`` chunks has no index (its memory is freed): Milvus' own search serves it. One of
more than :data:`FOREGROUND_CHUNKS` is read in a background thread (milvus-lite reads about a thousand rows a
second on a busy 2-core machine): Milvus' search serves the searches until the index is ready; a write meanwhile
discards the read, and the next search starts another.

An index read from Milvus is also written to disk (rag.store.exact_snapshot), tagged with the stamp and row count
it was read at; a process that finds it still matching loads it instead of reading Milvus. Publishing a snapshot
makes this process' next write replace the stamp again, so that a snapshot never outlives a write.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

from rag.store import exact_snapshot
from rag.store.exact_index import ExactIndex


class StampedCollection(Protocol):
    """What the exact search needs of a collection (rag.store.KnowledgeBase)."""

    def write_stamp(self) -> str: ...

    def record_write_stamp(self, stamp: str) -> None: ...

    def count(self) -> int: ...

    def index_rows(self) -> Iterable[dict[str, Any]]: ...


FOREGROUND_CHUNKS = 20_000  # collections up to this size are read before the first search returns
READ_ATTEMPTS = 3  # a background read that fails is tried again this often; the next search starts another

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


def unload(location: str, name: str) -> None:
    """Free the collection's index in this process (its snapshot stays): the next search or ingest finds what a
    process started now would (benchmarks and tests use it)."""
    with _REGISTRY_LOCK:
        _REGISTRY.pop((location, name), None)


def forget(location: str, name: str, *, embedded: bool = True) -> None:
    """The collection was dropped: free its index and delete its snapshot."""
    with _REGISTRY_LOCK:
        _REGISTRY.pop((location, name), None)
    if embedded:
        with suppress(OSError):
            exact_snapshot.snapshot_path(location, name).unlink(missing_ok=True)


class ExactSearch:
    """One collection's index, what it was checked against, and the lock that makes writes and searches take turns."""

    def __init__(self, location: str, name: str, *, embedded: bool = True) -> None:
        self.location = location
        self.name = name
        self.snapshot = exact_snapshot.snapshot_path(location, name) if embedded else None
        self.lock = threading.RLock()
        self.index: ExactIndex | None = None
        self.stamp: str | None = None  # the collection's write stamp, as last read or written by this process
        self.checked_release = -1  # _RELEASES[location] when stamp and row count were last read
        self.stamped_release = -1  # _RELEASES[location] when this process last replaced the stamp
        self.oversize: int | None = None  # chunks of the collection when found over a budget, unchanged since
        self.builds = 0  # times the index was read from Milvus (tests and benchmarks read it)
        self.loads = 0  # times it was loaded from a snapshot instead
        self.saved_writes = 0  # ``writes`` when the index last equalled its snapshot (loaded or written)
        self.budget = 0  # the max_chunks last asked for: an index patched past it is dropped (0: none known)
        self.writes = 0  # writes through this process (a background read that overlaps one is discarded)
        self.reading = False  # a background read is running

    @classmethod
    def of(cls, location: str, name: str, *, embedded: bool = True) -> ExactSearch:
        """The shared exact search of collection ``name`` of the database at ``location``."""
        with _REGISTRY_LOCK:
            found = _REGISTRY.get((location, name))
            if found is None:
                found = _REGISTRY[(location, name)] = cls(location, name, embedded=embedded)
            return found

    def current(self, collection: StampedCollection, dim: int, max_chunks: int) -> ExactIndex | None:
        """The index, equal to what the collection holds (read from Milvus when missing or stale), or None when the
        collection holds more than ``max_chunks`` chunks. Call with ``lock`` held."""
        if max_chunks <= 0:
            return None
        self._check(collection)
        self.budget = max_chunks
        if self.index is None:
            if self.reading or (self.oversize is not None and self.oversize > max_chunks):
                return None  # being read in the background, or known to be too large and unchanged since
            total = collection.count()
            if total > max_chunks:
                self.oversize = total
                return None
            if not self._load(dim, total):
                if total > FOREGROUND_CHUNKS:
                    self._read_in_background(collection, dim)
                    return None
                self.index, self.oversize = _read(collection, dim), None
                self.builds += 1
                self._publish(self._write_snapshot(self.index))
        if len(self.index) > max_chunks:  # grown past the budget: free the memory, Milvus searches
            self.index, self.oversize = None, len(self.index)
        return self.index

    def held(self, collection: StampedCollection, dim: int, max_chunks: int) -> ExactIndex | None:
        """The index when it is had without reading Milvus: in memory, loaded from a matching snapshot, or empty
        for an empty collection; else None. An ingest holds it so that its writes patch it, and then :meth:`save`
        leaves a snapshot for the next process. Call with ``lock`` held."""
        if max_chunks <= 0:
            return None
        self._check(collection)
        self.budget = max_chunks
        if self.index is None and not self.reading:
            total = collection.count()
            if total == 0:
                self.index, self.oversize, self.saved_writes = ExactIndex(dim), None, self.writes
            elif total <= max_chunks:
                self._load(dim, total)
        return self.index

    def save(self) -> None:
        """Write the snapshot, when writes through this process changed the index since it equalled one."""
        with self.lock:
            if self.index is not None and self.writes != self.saved_writes:
                self._publish(self._write_snapshot(self.index))

    def _read_in_background(self, collection: StampedCollection, dim: int) -> None:
        if self.reading:
            return
        self.reading = True
        started = (self.writes, _RELEASES[self.location])

        def run() -> None:
            index = None
            for attempt in range(1, READ_ATTEMPTS + 1):
                try:
                    index = _read(collection, dim)
                    break
                except Exception:  # e.g. the store was closed meanwhile (a CLI run ends): Milvus' search serves
                    logging.getLogger(__name__).debug("reading the exact index of %s failed (attempt %d of %d)",
                                                        self.name, attempt, READ_ATTEMPTS, exc_info=True)
            written = self._write_snapshot(index) if index is not None else None  # outside the lock: seconds
            with self.lock:
                self.reading = False
                if index is not None and self.index is None and (self.writes, _RELEASES[self.location]) == started:
                    self.index, self.oversize = index, None
                    self.builds += 1
                    self._publish(written)
                elif written is not None:
                    written.unlink(missing_ok=True)

        threading.Thread(target=run, name=f"exact-index-{self.name}", daemon=True).start()

    def ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a background read to end; whether an index is there."""
        deadline = time.monotonic() + timeout
        while self.reading and time.monotonic() < deadline:
            time.sleep(0.05)
        with self.lock:  # the read sets ``reading`` and the index in one locked step: wait for it to end
            return self.index is not None

    def _load(self, dim: int, rows: int) -> bool:
        """Install the snapshot's index when it matches the collection's stamp and row count (as :meth:`_check`
        read them); whether it did."""
        if self.snapshot is None or self.stamp is None or not self.snapshot.is_file():
            return False
        try:
            head = exact_snapshot.header(self.snapshot)
            if (head.get("format"), head.get("stamp"), head.get("rows"), head.get("dim")) != (
                exact_snapshot.FORMAT, self.stamp, rows, dim
            ):
                return False
            index = exact_snapshot.read(self.snapshot)
        except Exception:  # damaged or foreign: read from Milvus (and a new snapshot is written)
            logging.getLogger(__name__).warning("the exact index snapshot %s could not be read; reading the index "
                                                "from Milvus", self.snapshot, exc_info=True)
            return False
        self.index, self.oversize, self.saved_writes = index, None, self.writes
        self.loads += 1
        return True

    def _write_snapshot(self, index: ExactIndex) -> Path | None:
        """``index`` written to a temporary file (None when there is nowhere to write, or it failed)."""
        if self.snapshot is None or self.stamp is None:
            return None
        try:
            return exact_snapshot.write(index, self.snapshot, self.stamp)
        except (OSError, ValueError, TypeError):  # a read-only folder, a full disk, metadata JSON cannot hold
            logging.getLogger(__name__).debug("the exact index snapshot of %s was not written", self.name,
                                              exc_info=True)
            return None

    def _publish(self, written: Path | None) -> None:
        """Make a written snapshot the collection's (call with ``lock`` held, the index it holds installed)."""
        if written is None or self.snapshot is None:
            return
        try:
            os.replace(written, self.snapshot)
        except OSError:
            written.unlink(missing_ok=True)
            return
        self.saved_writes = self.writes
        self.stamped_release = -1  # this process' next write replaces the stamp: the snapshot then no longer matches

    def _check(self, collection: StampedCollection) -> None:
        """After this process let the database go: drop what another process may have changed meanwhile."""
        release = _RELEASES[self.location]
        if release == self.checked_release:
            return
        stamp = collection.write_stamp()
        if stamp != self.stamp or (self.index is not None and collection.count() != len(self.index)):
            self.index, self.oversize = None, None
        self.stamp, self.checked_release = stamp, release

    @contextmanager
    def writing(self, collection: StampedCollection) -> Iterator[ExactIndex | None]:
        """Around a write: the stamp replaced first (once per hold of the database), then the index to patch with
        what was written (None when there is none). A failed write drops the index (read again when needed)."""
        with self.lock:
            self._check(collection)
            release = _RELEASES[self.location]
            if self.stamped_release != release:
                self.stamp = new_stamp()
                collection.record_write_stamp(self.stamp)
                self.stamped_release = release
            self.oversize = None
            self.writes += 1
            try:
                yield self.index
            except BaseException:
                self.index = None
                raise
            if self.index is not None and 0 < self.budget < len(self.index):  # grown past it: Milvus searches
                self.index, self.oversize = None, len(self.index)


def _read(collection: StampedCollection, dim: int) -> ExactIndex:
    """A new index of every chunk the collection holds."""
    index = ExactIndex(dim)
    batch: list[dict[str, Any]] = []
    for row in collection.index_rows():
        batch.append(row)
        if len(batch) >= 4096:
            index.add(batch)
            batch = []
    index.add(batch)
    return index
