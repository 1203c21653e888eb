"""Relevance judgments from the UI, appended to ``<app.data_dir>/judgments.jsonl`` for the evaluation command."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

Label = Literal["relevant", "not_relevant"]
FILE_NAME = "judgments.jsonl"
_LOCK = threading.Lock()  # sessions run in threads of one process


def judgments_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / FILE_NAME


def append_judgment(data_dir: str | Path, *, kb: str, query: str, chunk_id: str, source: str, label: Label) -> dict:
    """Append one judgment line {kb, query, chunk_id, source, label, time (UTC ISO 8601)} and return it."""
    record = {"kb": kb, "query": query, "chunk_id": chunk_id, "source": source, "label": label,
              "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    path = judgments_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK, path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return record
