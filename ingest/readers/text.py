"""Plain text (.txt) and Markdown (.md): one document; Markdown is split into sections at its headings."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from markdown_it import MarkdownIt

from ingest.readers.base import ReadError, Section, SourceDocument
from ingest.readers.encoding import decode_text
from ingest.readers.sections import HeadingSections

_COMMONMARK = MarkdownIt("commonmark")


def read_text(data: bytes, path: Path) -> SourceDocument:
    """A .txt file as one section titled by the file stem."""
    text = _decoded(data)
    return SourceDocument(None, path.stem, [Section(text.strip())], text, {"file_type": "txt"})


def read_markdown(data: bytes, path: Path) -> SourceDocument:
    """A .md file, one section per heading (metadata ``heading``: "Title > Subtitle")."""
    text = _decoded(data)
    sections, title = markdown_sections(text)
    if not sections:
        raise ReadError("no text besides headings")
    return SourceDocument(None, title or path.stem, sections, text, {"file_type": "md"})


def markdown_sections(text: str) -> tuple[list[Section], str | None]:
    """Sections of Markdown ``text`` and its first level-1 heading.

    Headings are the top-level ATX (``# Title``) and setext (``Title`` over ``===`` or ``---``) headings
    CommonMark finds (markdown-it-py), so ``#`` lines in code blocks and fences are text. A leading YAML
    front matter block (``---`` ... ``---``) is text too, not a setext heading.
    """
    lines = text.split("\n")
    skip = _front_matter_lines(lines)
    headings: dict[int, tuple[int, int, str]] = {}  # first line -> (line after it, level, heading text)
    tokens = _COMMONMARK.parse("\n".join(lines[skip:]))
    for opening, inline in pairwise(tokens):
        if opening.type == "heading_open" and opening.level == 0 and opening.map:
            heading = " ".join(inline.content.split())
            if heading:
                first, after = (skip + n for n in opening.map)
                headings[first] = (after, int(opening.tag[1:]), heading)
    builder = HeadingSections()
    title: str | None = None
    number = 0
    while number < len(lines):
        if number in headings:
            number, level, heading = headings[number]
            if level == 1 and title is None:
                title = heading
            builder.heading(level, heading)
            continue
        builder.line(lines[number].rstrip())
        number += 1
    return builder.finish(), title


def _front_matter_lines(lines: list[str]) -> int:
    """How many leading lines are a YAML front matter block (``---`` to ``---`` or ``...``), else 0."""
    if not lines or lines[0].rstrip() != "---":
        return 0
    for number, line in enumerate(lines[1:], start=1):
        if line.rstrip() in ("---", "..."):
            return number + 1
    return 0


def _decoded(data: bytes) -> str:
    text = decode_text(data)
    if not text.strip():
        raise ReadError("empty file")
    return text
