"""Word (.docx) via python-docx: body paragraphs and tables in order, sections at Heading styles."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from ingest.readers.base import ReadError, SourceDocument
from ingest.readers.sections import HeadingSections, one_line
from ingest.readers.tables import markdown_table

_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)


def read_docx(data: bytes, path: Path) -> SourceDocument:
    """Paragraphs and tables (Markdown rows, the first row as header); title from core properties, else the
    first Title or Heading paragraph, else the file stem."""
    try:
        document = docx.Document(io.BytesIO(data))
        title = " ".join((document.core_properties.title or "").split())
        blocks = list(document.iter_inner_content())
        builder = HeadingSections()
        lines: list[str] = []
        first_heading = ""
        for block in blocks:
            if isinstance(block, Table):
                if table := markdown_table(_table_grid(block)):
                    head, rows = table
                    builder.table(head, rows)
                    lines.extend([head, *rows] if head else rows)
                continue
            text = " ".join(block.text.split())
            if not text:
                continue
            lines.append(text)
            level = _heading_level(block)
            if level is not None:
                first_heading = first_heading or text
                builder.heading(level, text)
            else:
                first_heading = first_heading or (text if _style_name(block) == "title" else "")
                builder.line(text)
    except zipfile.BadZipFile as exc:
        raise ReadError("corrupt DOCX: not a ZIP package (an old binary .doc renamed?)") from exc
    except Exception as exc:  # python-docx raises KeyError, XMLSyntaxError, PackageNotFoundError...
        raise ReadError(f"corrupt DOCX: {one_line(exc)}") from exc
    sections = builder.finish()
    if not sections:
        raise ReadError("no text in DOCX")
    title = title or first_heading or path.stem
    content = f"{title}\n\n" + "\n".join(lines)
    return SourceDocument(None, title, sections, content, {"file_type": "docx"})


def _heading_level(paragraph: Paragraph) -> int | None:
    match = _HEADING_STYLE.match(_style_name(paragraph))
    return int(match.group(1)) if match else None


def _style_name(paragraph: Paragraph) -> str:
    style = paragraph.style
    return (style.name or "").strip().lower() if style is not None else ""


def _table_grid(table: Table) -> list[list[str]]:
    """Each row's cells; a cell merged across columns (python-docx repeats it) is empty after its first column,
    a cell merged across rows keeps its text in each row."""
    grid = []
    for row in table.rows:
        cells, previous = [], None
        for cell in row.cells:
            cells.append("" if cell._tc is previous else cell.text)
            previous = cell._tc
        grid.append(cells)
    return grid
