"""Old binary Excel (.xls, Excel 97-2003) via python-calamine (Rust calamine): read like .xlsx, one document per
visible sheet, each row as "Header: value" pairs (ingest.readers.xlsx.sheet_document).
"""

from __future__ import annotations

import io
from pathlib import Path

import python_calamine

from ingest.readers.base import ReadError, SourceDocument
from ingest.readers.sections import one_line
from ingest.readers.xlsx import sheet_document


def read_xls(data: bytes, path: Path) -> list[SourceDocument]:
    """The visible sheets that hold text, each a document keyed by its sheet name."""
    try:
        workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
        try:
            documents = [
                document
                for meta in workbook.sheets_metadata
                if meta.visible == python_calamine.SheetVisibleEnum.Visible
                and meta.typ == python_calamine.SheetTypeEnum.WorkSheet
                and (document := sheet_document(
                    meta.name, workbook.get_sheet_by_name(meta.name).to_python(skip_empty_area=False), path.stem,
                    "xls"))
            ]
        finally:
            workbook.close()
    except python_calamine.PasswordError as exc:
        raise ReadError("encrypted XLS (password protected)") from exc
    except Exception as exc:  # CalamineError and friends on files that are not .xls, or damaged ones
        raise ReadError(f"corrupt XLS: {one_line(exc)}") from exc
    if not documents:
        raise ReadError("no text in XLS (every sheet is empty)")
    return documents
