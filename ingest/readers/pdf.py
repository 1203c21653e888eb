"""PDF via pypdf's text layer: one section per page that has text (metadata ``page``, 1-based).

With OCR options, a page without a usable text layer (none, or mostly unreadable characters), or every page
with ``always``, is rendered with pypdfium2 and OCR'd instead (its section's metadata gets ``ocr: True``).
"""

from __future__ import annotations

import io
from pathlib import Path

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from ingest.readers.base import ReadError, Section, SourceDocument
from ingest.readers.ocr import OcrOptions, PageProgress, recognise, too_many_pages, usable_text
from ingest.readers.pdf_tables import pages_with_lines, quiet_pdf_libraries, with_tables
from ingest.readers.sections import one_line

ENCRYPTED = "encrypted PDF (password protected)"
READ_PROGRESS_PAGES = 50  # a PDF of more pages reports each page read (on_read): it takes seconds to minutes
NO_TEXT = "PDF has no text layer (scanned images?); OCR it first"
RENDER_DPI = 200  # resolution of pages rendered for OCR, at most RENDER_MAX_SIDE pixels on the long side
RENDER_MAX_SIDE = 2000  # RapidOCR shrinks larger images to this anyway
_PLACEHOLDER_TITLES = {"untitled", "untitled document"}  # reportlab writes "untitled" when no title is set


def read_pdf(
    data: bytes, path: Path, ocr: OcrOptions | None = None, on_page: PageProgress | None = None,
    on_read: PageProgress | None = None,
) -> SourceDocument:
    """The pages of a PDF that have text; title from the /Title metadata, else the file stem.

    ``ocr`` None reads text layers only, as ``mode="never"`` does; ``on_page`` hears of each page OCR'd;
    ``on_read``, for a PDF of more than READ_PROGRESS_PAGES pages, of each page read: (pages read, pages to read),
    its text layer's pages, then those searched for tables (pdfplumber: about ten times slower per page).
    """
    ocr_on = ocr is not None and ocr.mode != "never"
    with quiet_pdf_libraries():
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            _decrypt(reader)
            pages = len(reader.pages)
            lined = pages_with_lines(reader)  # candidates for pdfplumber's table search
            to_read = pages + len(lined)
            if pages <= READ_PROGRESS_PAGES:
                on_read = None
            texts = []
            for page in reader.pages:
                texts.append(_clean(page.extract_text() or ""))
                if on_read is not None:
                    on_read(len(texts), to_read)
            title = _title(reader) or path.stem
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
    ocr_read: set[int] = set()  # pages whose text came from OCR
    if ocr is not None and ocr_on:
        scanned = [n for n, text in enumerate(texts, start=1) if ocr.mode == "always" or not usable_text(text)]
        if len(scanned) > ocr.max_pages:
            raise too_many_pages(len(scanned), ocr)
        for number, text in zip(scanned, _ocr_pages(data, scanned, on_page), strict=True):
            if text:  # OCR found nothing: what the text layer had (if anything) stays
                texts[number - 1] = text
                ocr_read.add(number)
    sections = [
        Section(text, {"page": number, "ocr": True} if number in ocr_read else {"page": number})
        for number, text in enumerate(texts, start=1)
        if text
    ]
    if not sections:
        raise ReadError(f"no text in PDF: OCR found none on its {pages} pages" if ocr_on else NO_TEXT)
    on_table_page = None if on_read is None else lambda done, total: on_read(pages + done, pages + total)
    sections = with_tables(data, sections, lined, on_table_page)  # ruled tables as Markdown rows (pdf_tables)
    if on_read is not None:
        on_read(to_read, to_read)  # done (OCR'd pages and pages without text were not searched for tables)
    content = f"{title}\n\n" + "\n\n".join(s.text for s in sections)
    return SourceDocument(None, title, sections, content, {"file_type": "pdf", "pages": pages})


def _ocr_pages(data: bytes, numbers: list[int], on_page: PageProgress | None) -> list[str]:
    """The OCR'd text of the pages ``numbers`` (1-based), each rendered with pypdfium2."""
    import pypdfium2

    texts: list[str] = []
    if not numbers:
        return texts
    if on_page:
        on_page(0, len(numbers))
    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise ReadError(f"corrupt PDF: pages without text cannot be rendered for OCR ({one_line(exc)})") from exc
    try:
        for done, number in enumerate(numbers, start=1):
            page = document[number - 1]
            try:
                width, height = page.get_size()
                scale = min(RENDER_DPI / 72, RENDER_MAX_SIDE / max(width, height, 1.0))
                image = page.render(scale=scale).to_pil()
            except pypdfium2.PdfiumError as exc:
                raise ReadError(f"corrupt PDF: page {number} cannot be rendered for OCR ({one_line(exc)})") from exc
            finally:
                page.close()
            texts.append(_clean(recognise(image)))
            if on_page:
                on_page(done, len(numbers))
    finally:
        document.close()
    return texts


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
