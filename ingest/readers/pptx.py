"""PowerPoint (.pptx) via python-pptx: one section per slide, its tables as TableSections of the same slide.

A slide's section is its title (also its heading), the text of its other shapes in reading order (top to
bottom, then left to right, inside groups too) and its speaker notes; metadata ``page`` is the slide number.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pptx
from pptx.shapes.base import BaseShape
from pptx.shapes.group import GroupShape
from pptx.slide import Slide

from ingest.readers.base import ReadError, Section, SourceDocument
from ingest.readers.ooxml import check_package
from ingest.readers.sections import one_line
from ingest.readers.tables import TableSection, markdown_table

NOTES_LABEL = "Notes:"


def read_pptx(data: bytes, path: Path) -> SourceDocument:
    """The slides that hold text; title from core properties, else the first slide title, else the file stem."""
    check_package(data, "PPTX", ".ppt")
    try:
        presentation = pptx.Presentation(io.BytesIO(data))
        title = " ".join((presentation.core_properties.title or "").split())
        sections: list[Section] = []
        first_title = ""
        slides = 0
        for number, slide in enumerate(presentation.slides, start=1):
            slides = number
            slide_title, slide_sections = _slide_sections(slide, number)
            first_title = first_title or slide_title
            sections += slide_sections
    except ReadError:
        raise
    except Exception as exc:  # python-pptx raises KeyError, PackageNotFoundError, XML errors... on bad files
        raise ReadError(f"corrupt PPTX: {one_line(exc)}") from exc
    if not sections:
        raise ReadError("no text in PPTX")
    title = title or first_title or path.stem
    content = f"{title}\n\n" + "\n\n".join(s.text for s in sections)
    return SourceDocument(None, title, sections, content, {"file_type": "pptx", "slides": slides})


def _slide_sections(slide: Slide, number: int) -> tuple[str, list[Section]]:
    """(slide title, sections): the slide's text section, then one TableSection per table."""
    title_shape = slide.shapes.title
    title = _one_line(title_shape.text_frame.text) if title_shape is not None else ""
    meta: dict[str, Any] = {"page": number, **({"heading": title} if title else {})}
    lines = [title] if title else []
    tables: list[TableSection] = []
    for shape in _reading_order(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        if getattr(shape, "has_table", False):
            if found := markdown_table([[cell.text for cell in row.cells] for row in shape.table.rows]):
                head, rows = found
                tables.append(TableSection.of("\n".join(p for p in (title, head) if p), rows, meta))
        elif getattr(shape, "has_text_frame", False):
            lines += [text for paragraph in shape.text_frame.paragraphs if (text := _one_line(paragraph.text))]
    frame = slide.notes_slide.notes_text_frame if slide.has_notes_slide else None
    notes = [text for paragraph in frame.paragraphs if (text := _one_line(paragraph.text))] if frame else []
    if notes:
        lines += [NOTES_LABEL, *notes]
    has_text = len(lines) > (1 if title else 0) or not tables  # a title over a table leads the table's chunks
    sections: list[Section] = [Section("\n".join(lines), meta)] if lines and has_text else []
    return title, sections + list(tables)


def _reading_order(shapes: Iterable[BaseShape]) -> Iterator[BaseShape]:
    """Shapes top to bottom, then left to right; a group's shapes in its place, in their own order."""
    for shape in sorted(shapes, key=lambda s: (s.top or 0, s.left or 0)):
        if isinstance(shape, GroupShape):
            yield from _reading_order(shape.shapes)
        else:
            yield shape


def _one_line(text: str) -> str:
    return " ".join(text.split())
