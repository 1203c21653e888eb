"""Excel (.xlsx) via openpyxl in read-only mode: one document per sheet, each row as "Header: value" pairs.

A sheet's first row with text is its header; every later row with text becomes one line of its
``Header: value`` pairs (empty cells left out), and the sheet is chunked by whole rows with the sheet name
leading each chunk (a TableSection). Formulas read as the values Excel cached when it last saved the file.
"""

from __future__ import annotations

import datetime as dt
import io
import warnings
from collections.abc import Iterable
from pathlib import Path

import openpyxl
from openpyxl.utils import get_column_letter

from ingest.readers.base import ReadError, SourceDocument
from ingest.readers.ooxml import check_package
from ingest.readers.sections import one_line
from ingest.readers.tables import TableSection, cell_text

ROW_SEPARATOR = " | "


def read_xlsx(data: bytes, path: Path) -> list[SourceDocument]:
    """The visible sheets that hold text, each a document keyed by its sheet name."""
    check_package(data, "XLSX", ".xls")
    documents: list[SourceDocument] = []
    try:
        with warnings.catch_warnings():  # openpyxl warns about features it drops (data validation, styles)
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                stem = " ".join((workbook.properties.title or "").split()) or path.stem
                for sheet in workbook.worksheets:
                    if getattr(sheet, "sheet_state", "visible") != "visible":
                        continue
                    sheet.reset_dimensions()  # a wrong stored size would pad every row to it
                    if document := sheet_document(sheet.title, sheet.iter_rows(values_only=True), stem):
                        documents.append(document)
            finally:
                workbook.close()
    except ReadError:
        raise
    except Exception as exc:  # openpyxl raises KeyError, InvalidFileException, XML errors... on bad packages
        raise ReadError(f"corrupt XLSX: {one_line(exc)}") from exc
    if not documents:
        raise ReadError("no text in XLSX (every sheet is empty)")
    return documents


def sheet_document(
    name: str, rows: Iterable[Iterable[object]], stem: str, file_type: str = "xlsx"
) -> SourceDocument | None:
    """One sheet's rows as a document of "Header: value" lines (the first row with text is the header); None
    when the sheet holds no text. Also serves .xls (ingest.readers.xls)."""
    header: list[str] | None = None
    lines: list[str] = []
    for values in rows:
        cells = [_value_text(v) for v in values]
        if not any(cells):
            continue
        if header is None:
            header = cells
            continue
        pairs = [f"{_column_name(header, i)}: {text}" for i, text in enumerate(cells) if text]
        lines.append(ROW_SEPARATOR.join(pairs))
    if header is None:
        return None
    if not lines:  # a header alone is the sheet's only text
        lines = [ROW_SEPARATOR.join(text for text in header if text)]
    section = TableSection.of(name, lines, {"heading": name})
    content = f"{stem}\n\n{section.text}"
    return SourceDocument(name, f"{stem} / {name}", [section], content, {"file_type": file_type, "sheet": name})


def _column_name(header: list[str], index: int) -> str:
    """The header of column ``index``, else its letter (A, B, ...) when the header cell is empty."""
    return (header[index] if index < len(header) else "") or get_column_letter(index + 1)


def _value_text(value: object) -> str:
    """A cell's value as Excel shows it plainly: whole numbers without ".0", dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return cell_text(value)
