"""Plain text (.txt) and Markdown (.md): one document; Markdown is split into sections at ATX headings."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.readers.base import ReadError, Section, SourceDocument
from ingest.readers.encoding import decode_text
from ingest.readers.sections import HeadingSections

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


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
    """Sections of Markdown ``text`` and its first level-1 heading; '#' lines inside code fences are text."""
    builder = HeadingSections()
    title: str | None = None
    fence: str | None = None
    for line in text.split("\n"):
        marker = m.group(1) if (m := _FENCE.match(line)) else ""
        if fence is None and marker:
            fence = marker
        elif fence is not None and marker.startswith(fence):
            fence = None
        elif fence is None and (m := _ATX.match(line)) and (heading := (m.group(2) or "").strip()):
            level = len(m.group(1))
            if level == 1 and title is None:
                title = heading
            builder.heading(level, heading)
            continue
        builder.line(line.rstrip())
    return builder.finish(), title


def _decoded(data: bytes) -> str:
    text = decode_text(data)
    if not text.strip():
        raise ReadError("empty file")
    return text
