"""Ruled tables in text PDFs, found by pdfplumber, kept as Markdown rows (TableSections) instead of flattened text.

``with_tables`` takes the page sections a PDF reader made and replaces each page that holds a table by the page's
other text (above, beside and below each table, read by pdfplumber) and its tables, all with the page's metadata.
pdfplumber parses a page about ten times slower than pypdf reads its text, so only pages whose content stream
draws lines or rectangles (a ruled table needs them) are given to it. Tables are an improvement, never a reason
to fail: when pdfplumber cannot read the file, the sections stay as they were.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pdfplumber
from pdfplumber.page import Page
from pypdf import PdfReader

from ingest.readers.base import Section
from ingest.readers.tables import TableSection, markdown_table

_DRAWS_LINES = re.compile(rb"\s(?:re|l)\s")  # the path operators rectangle and line-to
BBox = tuple[float, float, float, float]


def with_tables(
    data: bytes, sections: list[Section], lined: set[int], on_page: Callable[[int, int], None] | None = None
) -> list[Section]:
    """``sections`` (one per page, metadata ``page``) with each page that holds a ruled table split into its
    text and its tables; only pages in ``lined`` (see :func:`pages_with_lines`) are searched, and pages read by
    OCR (metadata ``ocr``) are left as they are. ``on_page`` hears of each page searched: (done, to search)."""
    try:
        with quiet_pdf_libraries():
            pages = lined & {s.metadata.get("page") for s in sections if not s.metadata.get("ocr")}
            if not pages:
                return sections
            replaced: dict[int, list[Section]] = {}
            with pdfplumber.open(io.BytesIO(data), password="") as pdf:
                for done, number in enumerate(sorted(pages), start=1):
                    meta = next(s.metadata for s in sections if s.metadata.get("page") == number)
                    page = pdf.pages[number - 1]
                    if found := _page_sections(page, meta):
                        replaced[number] = found
                    page.close()
                    if on_page is not None:
                        on_page(done, len(pages))
    except Exception:  # pdfplumber failing on a file pypdf read: keep pypdf's text
        return sections
    out: list[Section] = []
    for section in sections:
        number = section.metadata.get("page")
        if number not in replaced:
            out.append(section)
        elif replaced[number]:  # a page's first section brings all of its new ones
            out += replaced[number]
            replaced[number] = []
    return out


def pages_with_lines(reader: PdfReader) -> set[int]:
    """The 1-based numbers of the pages whose content stream draws lines or rectangles (a ruled table needs them);
    none when a page's contents cannot be read (tables are an improvement, never a reason to fail)."""
    found = set()
    try:
        for number, page in enumerate(reader.pages, start=1):
            contents = page.get_contents()
            if contents is not None and _DRAWS_LINES.search(contents.get_data()):
                found.add(number)
    except Exception:  # pypdf raises many types on bad files; extracting the text reports them
        return set()
    return found


def _page_sections(page: Page, meta: dict[str, Any]) -> list[Section] | None:
    """The page as text and TableSections in reading order, or None when it holds no table of 2+ rows and columns."""
    tables: list[tuple[BBox, str, list[str]]] = []
    for table in sorted(page.find_tables(), key=lambda t: (t.bbox[1], t.bbox[0])):
        grid = table.extract()
        found = markdown_table(grid)
        if found and found[0] and max(len(row) for row in grid) >= 2:
            tables.append((table.bbox, *found))
    if not tables:
        return None
    boxes = [bbox for bbox, _, _ in tables]
    sections: list[Section] = []
    top = page.bbox[1]
    for bbox, head, rows in tables:  # bands of the page that do not overlap, so no text is read twice
        start, end = max(top, bbox[1]), max(top, bbox[3])
        _add_text(sections, page, boxes, top, start, meta)  # above the table
        sections.append(TableSection.of(head, rows, meta))
        _add_text(sections, page, boxes, start, end, meta)  # beside it
        top = end
    _add_text(sections, page, boxes, top, page.bbox[3], meta)
    return sections


def _add_text(sections: list[Section], page: Page, boxes: list[BBox], top: float, bottom: float,
              meta: dict[str, Any]) -> None:
    """Append the text of the characters centred between ``top`` and ``bottom`` and outside every table."""
    if bottom <= top:
        return

    def keep(obj: dict[str, Any]) -> bool:
        if obj.get("object_type") != "char":
            return False
        x, y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
        return top <= y < bottom and not any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes)

    text = page.filter(keep).extract_text() or ""
    text = "\n".join(line.rstrip() for line in text.replace("\x00", "").splitlines()).strip()
    if text:
        sections.append(Section(text, dict(meta)))


@contextmanager
def quiet_pdf_libraries() -> Iterator[None]:
    """Silence pdfminer's and pypdf's logged and warned complaints about slightly malformed files (the PDF reader's
    text layers and OCR, and the table finder here)."""
    loggers = [logging.getLogger(name) for name in ("pdfminer", "pypdf")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
