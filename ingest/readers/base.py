"""What every reader returns: documents made of sections, or a one-line reason why not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ReadError(Exception):
    """A file that cannot be ingested; the message is the one-line reason shown to the user."""


@dataclass
class Section:
    """A run of text that shares metadata, e.g. one PDF page or one Markdown heading's body."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceDocument:
    """One document read from a file.

    Ordinary files give exactly one document with ``key=None``. Record files (.csv/.json/.jsonl) give
    one document per row, ``key`` being the row's id (its id field, else its 1-based row number).
    ``content`` is the exact text the content hash is computed from (for a row, its canonical JSON).
    """

    key: str | None
    title: str
    sections: list[Section]
    content: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReaderOptions:
    """Choices for record files; None means auto-detect."""

    text_field: str | None = None
    title_field: str | None = None
    id_field: str | None = None
    title_in_text: bool = False
