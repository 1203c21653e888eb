"""PDF via pypdf's text layer: one section per page that has text (metadata ``page``, 1-based)."""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from ingest.readers.base import ReadError, Section, SourceDocument
from ingest.readers.pdf_tables import with_tables
from ingest.readers.sections import one_line

ENCRYPTED = "encrypted PDF (password protected)"
NO_TEXT = "PDF has no text layer (scanned images?); OCR it first"
_PLACEHOLDER_TITLES = {"untitled", "untitled document"}  # reportlab writes "untitled" when no title is set


def read_pdf(data: bytes, path: Path) -> SourceDocument:
    """The pages of a PDF that have text; title from the /Title metadata, else the file stem."""
    with _quiet():
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            _decrypt(reader)
            sections = [
                Section(text, {"page": number})
                for number, page in enumerate(reader.pages, start=1)
                if (text := _clean(page.extract_text() or ""))
            ]
            title = _title(reader) or path.stem
            pages = len(reader.pages)
        except ReadError:
            raise
        except FileNotDecryptedError as exc:
            raise ReadError(ENCRYPTED) from exc
        except DependencyError as exc:
            # Only when the declared dependency cryptography is missing (a broken install).
            raise ReadError("encrypted PDF (AES) and this installation lacks its dependency cryptography; "
                            "reinstall ragscope") from exc
        except Exception as exc:  # pypdf raises many types on bad files: PdfReadError, KeyError...
            raise ReadError(f"corrupt PDF: {_reason(data, exc)}") from exc
    if not sections:
        raise ReadError(NO_TEXT)
    sections = with_tables(data, sections)  # ruled tables as Markdown rows (ingest.readers.pdf_tables)
    content = f"{title}\n\n" + "\n\n".join(s.text for s in sections)
    return SourceDocument(None, title, sections, content, {"file_type": "pdf", "pages": pages})


def _decrypt(reader: PdfReader) -> None:
    """Open a PDF encrypted with only an owner password (empty user password); else ReadError."""
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise ReadError(ENCRYPTED)


def _reason(data: bytes, exc: Exception) -> str:
    if b"%PDF-" not in data[:1024]:
        return "no %PDF- header, not a PDF file"
    if b"%%EOF" not in data[-1024:]:
        return f"truncated (no %%EOF at the end); {one_line(exc)}"
    return one_line(exc)


def _title(reader: PdfReader) -> str:
    try:
        meta = reader.metadata
        title = meta.title if meta else None
    except Exception:  # a broken /Info dictionary is not worth failing the file for
        return ""
    title = " ".join(str(title or "").split())
    return "" if title.lower() in _PLACEHOLDER_TITLES else title


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence pypdf's logged and warned complaints about slightly malformed files."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
