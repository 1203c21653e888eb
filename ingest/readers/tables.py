"""Tables kept as tables: Markdown-style rows, chunked by whole rows with the header repeated in each chunk.

Readers turn a table (DOCX, HTML, PDF, a slide) into a :class:`TableSection` with :func:`markdown_table`, and an
Excel sheet into one whose rows are "Header: value" lines. The pipeline chunks every section with
:func:`chunk_section`: a TableSection is packed row by row into chunks of at most ``chunk_tokens`` tokens, each
starting with the section's ``head`` (its heading and the table's header row), so no row is split and every
chunk can be read on its own. Other sections go to the chunker as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Protocol

from ingest.readers.base import Section


class Chunker(Protocol):
    """What chunk_section needs of ingest.chunker.TokenChunker."""

    chunk_tokens: int

    def count(self, text: str) -> int: ...

    def split(self, text: str, on_progress: Callable[[int, int], None] | None = None, /) -> list[str]: ...


@dataclass
class TableSection(Section):
    """A section chunked by whole rows: every chunk is ``head`` followed by as many ``rows`` as fit.

    ``text`` is the whole table (``head`` and every row, one per line), as the document's content holds it.
    """

    head: str = ""
    rows: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, head: str, rows: Sequence[str], metadata: dict | None = None) -> TableSection:
        return cls(_join(head, list(rows)), dict(metadata or {}), head, list(rows))


def cell_text(value: object) -> str:
    """A cell as one line: whitespace collapsed, ``|`` escaped so that it does not start a new cell."""
    return " ".join(str(value if value is not None else "").split()).replace("|", r"\|")


def markdown_row(cells: Sequence[str]) -> str:
    """``| a | b |`` from cells already made one-line by :func:`cell_text`."""
    return "| " + " | ".join(cells) + " |"


def markdown_table(grid: Sequence[Sequence[object]], header_rows: int = 1) -> tuple[str, list[str]] | None:
    """(header lines, row lines) of a table given as rows of cells, or None when no cell has text.

    Rows without text are dropped and short rows padded, so every line has the same number of cells. The first
    ``header_rows`` rows are the header, followed by Markdown's ``| --- |`` line; a table of one row has no
    header (its only line is a row).
    """
    rows = [[cell_text(c) for c in row] for row in grid]
    rows = [row for row in rows if any(row)]
    if not rows:
        return None
    width = max(len(row) for row in rows)
    lines = [markdown_row(row + [""] * (width - len(row))) for row in rows]
    header_rows = min(header_rows, len(lines) - 1)
    if header_rows <= 0:
        return "", lines
    head = "\n".join([*lines[:header_rows], markdown_row(["---"] * width)])
    return head, lines[header_rows:]


ProgressCallback = Callable[[int, int], None]  # as ingest.chunker's: (characters done, characters in all)
PROGRESS_CHARS = 100_000  # as often as the chunker reports (once per window)


def chunk_section(section: Section, chunker: Chunker, on_progress: ProgressCallback | None = None) -> list[str]:
    """The chunks of one section: whole rows under a repeated head for a TableSection, else the chunker's."""
    if isinstance(section, TableSection):
        return chunk_rows(section.head, section.rows, chunker, on_progress)
    return chunker.split(section.text, on_progress)


def chunk_rows(
    head: str, rows: Sequence[str], chunker: Chunker, on_progress: ProgressCallback | None = None
) -> list[str]:
    """Rows packed in order into chunks of at most ``chunker.chunk_tokens`` tokens, each starting with ``head``.

    A row is never split, unless it alone (with the head) is over the limit: then the chunker cuts it, the head
    leading each piece it still fits in. A head over half the limit is not repeated: the table is then chunked as
    plain text. ``on_progress`` hears (characters of rows done, characters of all rows) every PROGRESS_CHARS.
    """
    budget = chunker.chunk_tokens
    head_tokens = chunker.count(head) if head else 0
    if head_tokens * 2 > budget:
        return chunker.split(_join(head, list(rows)), on_progress)
    counts = [chunker.count(row) for row in rows]
    ends = list(accumulate(len(row) + 1 for row in rows))  # characters up to the end of each row
    chunks: list[str] = []
    start = reported = 0
    while start < len(rows):
        end, used = start, head_tokens
        while end < len(rows) and used + counts[end] + 1 <= budget:  # +1: the line break between rows
            used += counts[end] + 1
            end += 1
        text = _join(head, rows[start:end])
        tokens = chunker.count(text) if end > start else budget + 1
        while end - start > 1 and tokens > budget:  # counts of pieces only estimate the whole
            end -= 1
            text = _join(head, rows[start:end])
            tokens = chunker.count(text)
        if tokens > budget:  # one row too long for a chunk of its own
            chunks.extend(_cut_row(head, rows[start], chunker))
            start += 1
            continue
        chunks.append(text)
        start = end
        if on_progress is not None and (ends[end - 1] - reported >= PROGRESS_CHARS or end == len(rows)):
            reported = ends[end - 1]
            on_progress(reported, ends[-1])
    if not rows and head:
        chunks.append(head)
    return chunks


def _cut_row(head: str, row: str, chunker: Chunker) -> list[str]:
    pieces = chunker.split(row)
    if not head:
        return pieces
    return [text if chunker.count(text := _join(head, [piece])) <= chunker.chunk_tokens else piece for piece in pieces]


def _join(head: str, rows: list[str]) -> str:
    return "\n".join([head, *rows] if head else rows)
