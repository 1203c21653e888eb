"""The file hash cache: a file whose stat is as recorded is known unchanged without reading its bytes again.

A re-ingest recognises unchanged files by the sha256 of their bytes. Reading and hashing every file costs about
a second per GB from the page cache (sha256 here: 1.3 GB/s), far more from a cold disk or a network share. This
cache remembers, per absolute path, the file's size, modification and change times (nanoseconds), inode and device
beside its sha256, in SQLite (``<app.data_dir>/file-hashes.sqlite``; ``ingest.file_hash_cache``). When all five
are the same, the recorded hash is the file's: the change time (ctime) moves with every write of the file's bytes
and every change of its times, and nobody can set it back, so a file rewritten and given its old modification time
again (``cp -p``, ``tar``, ``touch -d``) still differs; a file replaced by another (a save by rename, a copy) has
another inode. Git's index and rsync's quick check rest on the same stat data.

One race is left: a write within the same timestamp tick as the recorded change time leaves the stat unchanged. So
an entry is only trusted when its file's times were older than the moment discovery saw them by more than a tick
(``FINE_TICK_NS``; ``COARSE_TICK_NS`` on filesystems with whole-second times: FAT, HFS+). A file ingested right
after it was written is hashed again next time, and recorded then. Without a change time that follows writes
(Windows: its ``st_ctime`` is the creation time) discovery records no stat and every file is hashed.

The cache only ever answers "these bytes have this hash": whether a file is unchanged is still decided by that hash
against the knowledge base's own record, so the cache serves every knowledge base. An unreadable or damaged cache
file is left alone with a warning: ingest then hashes every file, as without it. An ingest with prune forgets the
entries of files deleted under the folders it walked.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from ingest.discovery import FileStat, FoundFile
from rag.shared_sqlite import connect

CACHE_FILENAME = "file-hashes.sqlite"
FINE_TICK_NS = 100_000_000  # 0.1 s: Linux stamps files from a clock that is up to one scheduler tick (10 ms) behind
COARSE_TICK_NS = 2_000_000_000  # FAT's 2 s times (HFS+: 1 s)
LOOKUP_CHUNK = 500
log = logging.getLogger(__name__)


def cache_path(data_dir: str | Path) -> Path:
    """Where the file hash cache lives for an ``app.data_dir``."""
    return Path(data_dir).expanduser() / CACHE_FILENAME


def settled(stat: FileStat) -> bool:
    """Whether ``stat`` was seen more than a timestamp tick after the file's last change: no write can have gone
    unseen by its times since (see the module docstring)."""
    tick = COARSE_TICK_NS if stat.ctime_ns % 1_000_000_000 == 0 else FINE_TICK_NS
    return max(stat.mtime_ns, stat.ctime_ns) <= stat.seen_ns - tick


def trusted(recorded: FileStat, now: FileStat) -> bool:
    """Whether a hash recorded with ``recorded`` is the hash of a file whose stat is ``now``."""
    return recorded[:5] == now[:5] and settled(recorded)


def _key(found: FoundFile) -> bytes:
    return os.fsencode(str(found.absolute))


class FileHashCache:
    """The SQLite store; thread-safe (one connection behind a lock), shareable between processes (WAL)."""

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = connect(
                self.path,
                "CREATE TABLE IF NOT EXISTS file_hashes (path BLOB PRIMARY KEY, size INTEGER NOT NULL, "
                "mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, "
                "device INTEGER NOT NULL, seen_ns INTEGER NOT NULL, sha256 TEXT NOT NULL) WITHOUT ROWID",
                timeout_s=timeout_s,
            )
        except (OSError, sqlite3.Error) as exc:
            self._give_up("cannot be opened", exc)

    def _give_up(self, what: str, exc: Exception) -> None:
        log.warning("the file hash cache %s %s (%s): every file is read and hashed; delete the file to start a new "
                    "cache, or set ingest.file_hash_cache: false", self.path, what, exc)
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def recognise(self, files: Sequence[FoundFile]) -> list[FoundFile]:
        """``files``, those whose stat is as recorded carrying their recorded hash (``known_hash``)."""
        keys = [_key(f) if f.stat is not None else None for f in files]
        wanted = [key for key in keys if key is not None]
        recorded: dict[bytes, tuple[FileStat, str]] = {}
        with self._lock:
            if self._conn is None or not wanted:
                return list(files)
            try:
                for start in range(0, len(wanted), LOOKUP_CHUNK):
                    part = wanted[start : start + LOOKUP_CHUNK]
                    rows = self._conn.execute(
                        "SELECT path, size, mtime_ns, ctime_ns, inode, device, seen_ns, sha256 FROM file_hashes "
                        f"WHERE path IN ({','.join('?' * len(part))})", part,
                    ).fetchall()
                    for path, *stat, sha in rows:
                        recorded[bytes(path)] = (FileStat(*stat), sha)
            except sqlite3.Error as exc:
                self._give_up("cannot be read", exc)
                return list(files)
        out = []
        for key, found in zip(keys, files, strict=True):
            entry = recorded.get(key) if key is not None else None
            if entry is not None and found.stat is not None and trusted(entry[0], found.stat):
                found = replace(found, known_hash=entry[1])
            out.append(found)
        return out

    def record(self, hashed: Iterable[tuple[FoundFile, str]]) -> None:
        """Remember the hashes of files just read; only settled ones (see :func:`settled`): others could not be
        trusted later anyway."""
        rows = [(_key(found), *found.stat[:6], sha) for found, sha in hashed
                if found.stat is not None and settled(found.stat)]
        with self._lock:
            if self._conn is None or not rows:
                return
            try:
                with self._conn:
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, ctime_ns, inode, device, seen_ns, "
                        "sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows,
                    )
            except sqlite3.Error as exc:
                self._give_up("cannot be written", exc)

    def forget_gone(self, folders: Iterable[Path], present: Iterable[FoundFile]) -> int:
        """Drop the entries of files under ``folders`` that no longer exist (ingest's prune); returns how many.
        Files in ``present`` (found by this walk) are not looked at; others under the folders are, one stat each."""
        found = {_key(f) for f in present}
        with self._lock:
            if self._conn is None:
                return 0
            try:
                gone = []
                for folder in folders:
                    prefix = os.fsencode(str(folder)).rstrip(b"/") + b"/"
                    rows = self._conn.execute(  # the paths starting with prefix: "0" is the byte after "/"
                        "SELECT path FROM file_hashes WHERE path >= ? AND path < ?", (prefix, prefix[:-1] + b"0"),
                    ).fetchall()
                    gone += [(path,) for (path,) in rows if path not in found and not os.path.lexists(path)]
                with self._conn:
                    self._conn.executemany("DELETE FROM file_hashes WHERE path = ?", gone)
            except sqlite3.Error as exc:
                self._give_up("cannot be written", exc)
                return 0
        return len(gone)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
