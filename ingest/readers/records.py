"""Record files (.csv, .json, .jsonl): one document per row, keyed by its id field or row number."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ingest.readers.base import ReaderOptions, ReadError, Section, SourceDocument
from ingest.readers.encoding import decode_text
from ingest.readers.sections import one_line

ID_FIELDS = ("_id", "id")
TEXT_FIELDS = ("text", "content", "body")
TITLE_FIELDS = ("title", "name")
_DELIMITERS = (",", "\t", ";")
_MAX_META_CHARS = 500
_FIELD_LIMIT = 64 * 1024 * 1024  # csv's default (128 KiB) is too small for whole documents in a cell


def read_records(data: bytes, path: Path, options: ReaderOptions | None = None) -> list[SourceDocument]:
    """Rows of a .csv, .json or .jsonl file as documents (see ``rows_to_documents``)."""
    suffix = path.suffix.lower()
    text = decode_text(data)
    if not text.strip():
        raise ReadError("empty file")
    parse = {".csv": parse_csv, ".jsonl": parse_jsonl}.get(suffix, parse_json)
    rows = parse(text)
    return rows_to_documents(rows, path.stem, suffix.lstrip("."), options or ReaderOptions())


def parse_csv(text: str) -> list[dict[str, Any]]:
    """CSV rows as dicts keyed by the header; the delimiter (comma, tab or semicolon) is detected."""
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    delimiter = _sniff_delimiter(text)
    _check_quotes_closed(text, delimiter)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        table = [row for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise ReadError(f"invalid CSV on line {reader.line_num}: {one_line(exc)}") from exc
    if not table:
        raise ReadError("empty file")
    header = [name.strip() or f"column{i}" for i, name in enumerate(table[0], start=1)]
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise ReadError(f"duplicate CSV column {', '.join(dupes)}")
    return [{name: (row[i] if i < len(row) else "") for i, name in enumerate(header)} for row in table[1:]]


def _check_quotes_closed(text: str, delimiter: str) -> None:
    """ReadError when a quoted field is never closed: the lenient reader would swallow every row after it."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    row_start = 1
    try:
        for _ in reader:
            row_start = reader.line_num + 1
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise ReadError(f'invalid CSV: a quoted field opened on line {row_start} is never closed (missing ")') \
                from exc
        # Other strict-mode complaints (a stray quote inside a field) are left to the lenient reader.


def parse_json(text: str) -> list[dict[str, Any]]:
    """A JSON list of objects, or an object holding exactly one list of objects."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReadError(f"invalid JSON on line {exc.lineno}: {exc.msg}") from exc
    except RecursionError as exc:
        raise ReadError("invalid JSON: nested too deeply") from exc
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list) and all(isinstance(r, dict) for r in v)]
        if len(lists) != 1:
            raise ReadError("JSON must be a list of objects or an object with one list of objects")
        value = lists[0]
    if not isinstance(value, list):
        raise ReadError("JSON must be a list of objects or an object with one list of objects")
    for number, row in enumerate(value, start=1):
        if not isinstance(row, dict):
            raise ReadError(f"JSON row {number} is not an object")
    return value


def parse_jsonl(text: str) -> list[dict[str, Any]]:
    """One JSON object per non-blank line."""
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReadError(f"invalid JSON on line {number}: {exc.msg}") from exc
        except RecursionError as exc:
            raise ReadError(f"invalid JSON on line {number}: nested too deeply") from exc
        if not isinstance(row, dict):
            raise ReadError(f"line {number} is not a JSON object")
        rows.append(row)
    return rows


def rows_to_documents(
    rows: list[dict[str, Any]], stem: str, file_type: str, options: ReaderOptions
) -> list[SourceDocument]:
    """One document per row with text; keys must be unique.

    Key: the id field (``options.id_field``, else ``_id`` or ``id``) or the 1-based row number. Text: the
    text field (``options.text_field``, else ``text``, ``content`` or ``body``), else every field as
    ``key: value`` lines. Title: ``options.title_field``, else ``title`` or ``name``, else "stem #key"; with
    ``options.title_in_text`` the title is also the first line of the text (as BEIR evaluations embed it).
    A field named in ``options`` that no row has is an error.
    """
    if not rows:
        raise ReadError("no rows")
    fields = list(dict.fromkeys(name for row in rows for name in row))
    id_field = _pick(options.id_field, ID_FIELDS, fields)
    text_field = _pick(options.text_field, TEXT_FIELDS, fields)
    title_field = _pick(options.title_field, TITLE_FIELDS, fields)
    documents: list[SourceDocument] = []
    first_row: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        key = _render(row.get(id_field)).strip() if id_field else ""
        key = key or str(number)
        if key in first_row:
            raise ReadError(f"duplicate id {key!r} in rows {first_row[key]} and {number}")
        first_row[key] = number
        text = _render(row.get(text_field)) if text_field else _render_fields(row)
        text = text.replace("\r\n", "\n").strip()
        if not text:
            continue
        title = " ".join(_render(row.get(title_field)).split()) if title_field else ""
        if options.title_in_text and title:
            text = f"{title}\n{text}"
        others = {k: _json_safe(v) for k, v in row.items() if k not in {id_field, text_field, title_field}}
        metadata = {
            "file_type": file_type, "row": number,
            "fields": {k: v for k, v in others.items() if v is not _SKIP},
        }
        content = json.dumps(row, sort_keys=True, ensure_ascii=False)
        documents.append(SourceDocument(key, title or f"{stem} #{key}", [Section(text)], content, metadata))
    if not documents:
        raise ReadError("no rows with text")
    return documents


def _pick(chosen: str | None, defaults: Iterable[str], fields: list[str]) -> str | None:
    if chosen:
        if chosen not in fields:
            raise ReadError(f"no field {chosen!r} in rows; fields: {', '.join(fields)}")
        return chosen
    return next((name for name in defaults if name in fields), None)


def _render(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _sniff_delimiter(text: str) -> str:
    """The candidate that splits the first lines into the same number (>1) of fields most often."""
    sample = [line for line in text.split("\n")[:50] if line.strip()]
    best, best_score = ",", (0.0, 0)
    for delimiter in _DELIMITERS:
        try:
            counts = [len(row) for row in csv.reader(sample, delimiter=delimiter)]
        except csv.Error:
            continue
        width = max(set(counts), key=counts.count)
        score = (counts.count(width) / len(counts), width) if width > 1 else (0.0, 0)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _render_fields(row: dict[str, Any]) -> str:
    return "\n".join(f"{name}: {text}" for name, value in row.items() if (text := _render(value).strip()))


_SKIP = object()


def _json_safe(value: Any) -> Any:
    """Short scalars that JSON can hold (strings, ints, finite floats, booleans, null); else ``_SKIP``.

    Long strings are left out: metadata is copied onto every chunk, and the row's text holds them anyway.
    """
    if isinstance(value, str):
        return value if len(value) <= _MAX_META_CHARS else _SKIP
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return _SKIP
