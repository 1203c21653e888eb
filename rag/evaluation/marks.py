"""Managing the marks in ``judgments.jsonl``: list a knowledge base's current marks, remove some, export, import.

The file is append-only for the cards (:func:`append_judgment`); a mark's latest line wins. Removing rewrites the
file atomically (a temporary file beside it, then ``os.replace``), keeping every other line exactly as it was,
other knowledge bases' included. Importing checks every line before it writes any.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rag.errors import InvalidInputError
from rag.evaluation.judgments import WRITE_LOCK, Judgment

MarkKey = tuple[str, str]  # (query, chunk_id): one mark per chunk and question
LABELS = ("relevant", "not_relevant")
_FIELDS = tuple(f.name for f in fields(Judgment))


def _parse(line: str, where: str, kb: str | None = None) -> Judgment:
    """One JSONL line as a mark; ``kb`` (when given) replaces the line's knowledge base. InvalidInputError if bad."""
    try:
        data: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{where} is not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{where} is not a JSON object")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise InvalidInputError(f"{where} has an unknown field {unknown[0]!r}; a mark has {', '.join(_FIELDS)}")
    if kb is not None:
        data["kb"] = kb
    data.setdefault("source", "")
    data.setdefault("time", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    for name in _FIELDS:
        if not isinstance(data.get(name), str):
            raise InvalidInputError(f"{where}: {name!r} must be text" if name in data else f"{where} has no {name!r}")
    for name in ("kb", "query", "chunk_id"):
        if not data[name].strip():
            raise InvalidInputError(f"{where}: {name!r} is empty")
    if data["label"] not in LABELS:
        raise InvalidInputError(f"{where}: label must be relevant or not_relevant, not {data['label']!r}")
    return Judgment(**data)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.is_file() else []


def current_marks(path: Path, kb: str) -> list[Judgment]:
    """The marks of knowledge base ``kb`` now in force (a chunk's latest mark for a question), oldest first."""
    latest: dict[MarkKey, Judgment] = {}
    for number, line in enumerate(_lines(path), start=1):
        if line.strip():
            mark = _parse(line, f"{path}: line {number}")
            if mark.kb == kb:
                latest.pop((mark.query, mark.chunk_id), None)  # re-inserted last: order of the latest marks
                latest[(mark.query, mark.chunk_id)] = mark
    return list(latest.values())


def marks_qrels(marks: Iterable[Judgment]) -> dict[str, dict[str, int]]:
    """Qrels from marks: qrels[query][chunk_id] = 1 (relevant) or 0, the later mark winning."""
    qrels: dict[str, dict[str, int]] = {}
    for mark in marks:
        qrels.setdefault(mark.query, {})[mark.chunk_id] = mark.grade
    return qrels


def _write_atomically(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def remove_marks(path: Path, kb: str, keys: Iterable[MarkKey]) -> int:
    """Remove every line (the mark and its history) of ``kb`` for these (query, chunk_id); returns lines removed."""
    doomed = set(keys)
    if not doomed:
        return 0
    with WRITE_LOCK:
        kept, removed = [], 0
        for number, line in enumerate(_lines(path), start=1):
            if line.strip():
                mark = _parse(line, f"{path}: line {number}")
                if mark.kb == kb and (mark.query, mark.chunk_id) in doomed:
                    removed += 1
                    continue
            kept.append(line)
        if removed:
            _write_atomically(path, kept)
    return removed


def export_marks(path: Path, kb: str) -> str:
    """The current marks of ``kb`` as JSONL (one mark a line), ready to import elsewhere."""
    return "".join(json.dumps(asdict(mark), ensure_ascii=False) + "\n" for mark in current_marks(path, kb))


def import_marks(path: Path, text: str, kb: str | None = None) -> int:
    """Append the marks of JSONL ``text`` (into knowledge base ``kb`` when given); returns how many.

    Every line is checked first: a bad one raises InvalidInputError naming its line number, and nothing is written.
    """
    marks = [_parse(line, f"line {number}", kb) for number, line in enumerate(text.splitlines(), start=1)
             if line.strip()]
    if not marks:
        raise InvalidInputError("the file holds no marks (one JSON object a line)")
    with WRITE_LOCK:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(asdict(mark), ensure_ascii=False) + "\n" for mark in marks)
    return len(marks)
