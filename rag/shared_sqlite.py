"""The connection of a SQLite file that processes (``rag-ingest``, the web app) and threads share: the caches'."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path, schema: str, *, timeout_s: float) -> sqlite3.Connection:
    """A connection to ``path`` (its folder made, ``schema``, a ``CREATE TABLE IF NOT EXISTS``, run), usable from
    any thread behind the caller's lock. WAL and a busy timeout let two processes read and write the file at once;
    ``synchronous = NORMAL``: a cache may lose its last writes in a power cut, never its consistency."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=timeout_s, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        with conn:
            conn.execute(schema)
    except BaseException:
        conn.close()
        raise
    return conn
