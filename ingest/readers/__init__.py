"""Read a file into documents by its suffix; every failure is a ReadError with a one-line reason."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from ingest.readers.base import ReaderOptions, ReadError, Section, SourceDocument
from ingest.readers.docx import read_docx
from ingest.readers.html import read_html
from ingest.readers.image import IMAGE_SUFFIXES, read_image
from ingest.readers.ocr import OcrOptions, PageProgress
from ingest.readers.pdf import read_pdf
from ingest.readers.pptx import read_pptx
from ingest.readers.records import read_records
from ingest.readers.sections import one_line
from ingest.readers.text import read_markdown, read_text
from ingest.readers.xls import read_xls
from ingest.readers.xlsx import read_xlsx

__all__ = ["SUPPORTED_SUFFIXES", "OcrOptions", "ReadError", "ReaderOptions", "Section", "SourceDocument", "read_file"]

_SINGLE: dict[str, Callable[[bytes, Path], SourceDocument]] = {
    ".txt": read_text,
    ".md": read_markdown,
    ".pdf": read_pdf,
    ".html": read_html,
    ".htm": read_html,
    ".docx": read_docx,
    ".pptx": read_pptx,
}
_RECORDS = frozenset({".csv", ".json", ".jsonl"})
# one document per sheet
_SHEETS: dict[str, Callable[[bytes, Path], list[SourceDocument]]] = {".xlsx": read_xlsx, ".xls": read_xls}

# Readers that may OCR pages: they also take the OCR options and a per-page progress callback.
_PAGED: dict[str, Callable[..., SourceDocument]] = {".pdf": read_pdf, **dict.fromkeys(IMAGE_SUFFIXES, read_image)}

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_SINGLE) | _RECORDS | frozenset(_SHEETS) | frozenset(_PAGED)

_ERRNO_REASONS = {
    errno.ENOENT: "file not found",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ELOOP: "too many levels of symbolic links (symlink loop)",
    errno.EISDIR: "not a regular file",
}


def read_file(
    path: Path, options: ReaderOptions | None = None, ocr: OcrOptions | None = None,
    on_ocr_page: PageProgress | None = None, on_read_page: PageProgress | None = None,
) -> list[SourceDocument]:
    """Documents in ``path``: one for ordinary files (key None), one per row for .csv/.json/.jsonl, one
    per sheet for .xlsx/.xls (key: the sheet name).

    ``ocr`` None reads PDF text layers only (images then fail); ``on_ocr_page`` hears of each page OCR'd,
    ``on_read_page`` of each page of a long PDF read (ingest.readers.pdf.read_pdf).
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ReadError(f"unsupported file type {suffix or '(no suffix)'}")
    data = read_bytes(path)
    if not data:
        raise ReadError("empty file")
    if suffix in _RECORDS:
        return read_records(data, path, options)
    if suffix in _SHEETS:
        return _SHEETS[suffix](data, path)
    if suffix == ".pdf":
        return [read_pdf(data, path, ocr, on_ocr_page, on_read_page)]
    if suffix in _PAGED:
        return [_PAGED[suffix](data, path, ocr, on_ocr_page)]
    return [_SINGLE[suffix](data, path)]


def read_bytes(path: Path) -> bytes:
    """The bytes of a regular file; OSError becomes a ReadError with a short reason."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device could block or never end
            raise ReadError("not a regular file")
        return path.read_bytes()
    except OSError as exc:
        raise ReadError(_ERRNO_REASONS.get(exc.errno or 0) or exc.strerror or one_line(exc)) from exc
