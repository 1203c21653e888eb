"""Builders for small PDF and DOCX fixtures."""

from __future__ import annotations

import io

import docx
from pypdf import PdfReader, PdfWriter
from reportlab.pdfgen import canvas


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A PDF with one line of text per page ("" gives a page with a drawing but no text)."""
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, invariant=1)
    if title:
        pdf.setTitle(title)
    for text in pages:
        if text:
            pdf.drawString(72, 720, text)
        else:
            pdf.rect(72, 600, 200, 100, fill=1)
        pdf.showPage()
    pdf.save()
    return buf.getvalue()


def encrypt_pdf(
    data: bytes, user_password: str, owner_password: str | None = None, algorithm: str | None = None
) -> bytes:
    """``data`` encrypted with pypdf's default (RC4) or ``algorithm`` (e.g. "AES-256", needs cryptography)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx(title: str | None = None) -> bytes:
    """A DOCX with a Title, two heading levels, body text and a 2x2 table under the last heading."""
    document = docx.Document()
    if title:
        document.core_properties.title = title
    document.add_paragraph("Team Handbook", style="Title")
    document.add_paragraph("Read this first.")
    document.add_heading("Setup", level=1)
    document.add_heading("Laptop", level=2)
    document.add_paragraph("Turn on disk encryption.")
    document.add_heading("Contacts", level=1)
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("Topic", "Contact"), ("Payroll", "People team")], strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
