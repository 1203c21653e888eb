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


def make_xlsx(sheets: dict[str, list[list[object]]], title: str | None = None, hidden: tuple[str, ...] = ()) -> bytes:
    """A workbook with one sheet per entry (rows of cell values, in order), made with openpyxl; ``hidden`` sheets
    are hidden."""
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    if title:
        workbook.properties.title = title
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
        if name in hidden:
            sheet.sheet_state = "hidden"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def make_pptx(slides: list[dict[str, object]]) -> bytes:
    """A deck made with python-pptx; each slide: ``title``, ``bullets`` (list), ``table`` (rows), ``notes``."""
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    for spec in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1 if spec.get("bullets") else 5])
        if spec.get("title"):
            slide.shapes.title.text = str(spec["title"])
        if bullets := spec.get("bullets"):
            body = slide.placeholders[1].text_frame
            body.text = str(bullets[0])
            for bullet in bullets[1:]:
                body.add_paragraph().text = str(bullet)
        if rows := spec.get("table"):
            shape = slide.shapes.add_table(len(rows), len(rows[0]), Inches(0.5), Inches(4.5), Inches(9), Inches(2))
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    shape.table.cell(r, c).text = str(value)
        if spec.get("notes"):
            slide.notes_slide.notes_text_frame.text = str(spec["notes"])
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()
