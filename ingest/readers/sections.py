"""Shared helpers: heading paths, section building, one-line error reasons."""

from __future__ import annotations

from ingest.readers.base import Section
from ingest.readers.tables import TableSection


class HeadingSections:
    """Collects lines into sections that start at headings, each with its heading path as metadata.

    A section's text starts with its own heading line, so the heading words are searchable; a heading
    followed directly by another heading gives no section. Lines before the first heading get no heading.
    """

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._path: list[tuple[int, str]] = []
        self._lines: list[str] = []

    def heading(self, level: int, title: str) -> None:
        """Start a section under heading ``title`` at ``level`` (1 = top)."""
        self._flush()
        self._path = [(lvl, t) for lvl, t in self._path if lvl < level]
        self._path.append((level, title))
        self._lines = [title]

    def line(self, text: str) -> None:
        """Add one line (or paragraph) of body text to the current section."""
        self._lines.append(text)

    def table(self, head: str, rows: list[str]) -> None:
        """Add a table as its own TableSection under the current heading, whose title leads its head."""
        self._flush()
        title = self._path[-1][1] if self._path else ""
        meta = {"heading": " > ".join(t for _, t in self._path)} if self._path else {}
        self.sections.append(TableSection.of("\n".join(p for p in (title, head) if p), rows, meta))
        self._lines = [title] if self._path else []

    def finish(self) -> list[Section]:
        """The sections collected so far, each with stripped, non-empty text."""
        self._flush()
        return self.sections

    def _flush(self) -> None:
        body = self._lines[1:] if self._path else self._lines
        if any(line.strip() for line in body):
            text = "\n".join(self._lines).strip()
            meta = {"heading": " > ".join(t for _, t in self._path)} if self._path else {}
            self.sections.append(Section(text, meta))
        self._lines = []


def one_line(exc: BaseException, limit: int = 120) -> str:
    """An exception's message as one short line (its type name when it has no message)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
