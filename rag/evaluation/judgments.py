"""Relevance marks users make in the web app: one JSON line each in ``<app.data_dir>/judgments.jsonl``."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from rag.errors import InvalidInputError

Label = Literal["relevant", "not_relevant"]
FILE_NAME = "judgments.jsonl"
WRITE_LOCK = threading.Lock()  # appends and rewrites of the file, by the threads of one process


@dataclass
class Judgment:
    """A user's mark on one retrieved chunk for one query."""

    kb: str
    query: str
    chunk_id: str
    source: str
    label: Label
    time: str

    @property
    def grade(self) -> int:
        return 1 if self.label == "relevant" else 0


def judgments_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / FILE_NAME


def append_judgment(
    data_dir: str | Path, *, kb: str, query: str, chunk_id: str, source: str, label: Label
) -> Judgment:
    """Append one mark to ``<data_dir>/judgments.jsonl`` (created when missing); the time is UTC ISO 8601."""
    if label not in ("relevant", "not_relevant"):
        raise InvalidInputError(f"label must be relevant or not_relevant, not {label!r}")
    judgment = Judgment(kb, query, chunk_id, source, label,
                        datetime.now(timezone.utc).isoformat(timespec="seconds"))
    path = judgments_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with WRITE_LOCK, path.open("a", encoding="utf-8") as handle:  # web-app sessions are threads of one process
        handle.write(json.dumps(asdict(judgment), ensure_ascii=False) + "\n")
    return judgment


def load_judgments(path: Path, kb: str | None = None) -> dict[str, dict[str, int]]:
    """Qrels from the marks of knowledge base ``kb``: qrels[query][chunk_id] = 1 or 0; the latest mark wins."""
    if not path.is_file():
        raise InvalidInputError(f"no judgments at {path}: mark chunks relevant / not relevant in the web app first")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                mark = Judgment(**json.loads(line))
            except (json.JSONDecodeError, TypeError) as exc:
                raise InvalidInputError(f"{path}: line {number} is not a judgment ({exc})") from None
            if kb is None or mark.kb == kb:
                qrels.setdefault(mark.query, {})[mark.chunk_id] = mark.grade
    if not qrels:
        raise InvalidInputError(f"{path} holds no judgments" + (f" for knowledge base {kb!r}" if kb else ""))
    return qrels
