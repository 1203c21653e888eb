"""Ruled tables in text PDFs (drawn by reportlab, found by pdfplumber) come back as Markdown rows on their page."""

from __future__ import annotations

import io
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.pdfgen import canvas
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ingest.readers import read_file
from ingest.readers.tables import TableSection

SALES = [
    ["Region", "Q1 sales", "Owner"], ["Europe", "120", "Anna"], ["Asia", "340", "Wei"], ["Americas", "210", "Maria"],
]


def report_pdf() -> bytes:
    """Page 1: text only. Page 2: a heading, a line of text, a ruled table, a closing line."""
    styles = getSampleStyleSheet()
    table = Table(SALES)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=A4, invariant=1).build([
        Paragraph("Quarterly report", styles["Heading1"]), Paragraph("Sales grew in every region.", styles["Normal"]),
        PageBreak(),
        Paragraph("Sales by region", styles["Heading2"]), Paragraph("Figures in thousands.", styles["Normal"]),
        Spacer(1, 12), table, Spacer(1, 12), Paragraph("Totals are audited.", styles["Normal"]),
    ])
    return buf.getvalue()


def test_a_ruled_table_comes_back_as_markdown_rows_between_the_text_of_its_page(tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(report_pdf())
    [doc] = read_file(tmp_path / "report.pdf")
    assert [(type(s).__name__, s.metadata, s.text) for s in doc.sections] == [
        ("Section", {"page": 1}, "Quarterly report\nSales grew in every region."),  # pypdf's text, untouched
        ("Section", {"page": 2}, "Sales by region\nFigures in thousands."),
        ("TableSection", {"page": 2}, "| Region | Q1 sales | Owner |\n| --- | --- | --- |\n| Europe | 120 | Anna |\n"
                                      "| Asia | 340 | Wei |\n| Americas | 210 | Maria |"),
        ("Section", {"page": 2}, "Totals are audited."),
    ]
    table = doc.sections[2]
    assert isinstance(table, TableSection) and table.head == "| Region | Q1 sales | Owner |\n| --- | --- | --- |"
    assert "| Asia | 340 | Wei |" in doc.content


def test_a_framed_box_of_one_column_is_not_a_table(tmp_path: Path) -> None:
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, invariant=1)
    pdf.rect(60, 660, 300, 80)  # pdfplumber finds a table of one column and two rows here
    pdf.line(60, 700, 360, 700)
    pdf.drawString(72, 715, "Important: read the whole policy.")
    pdf.drawString(72, 675, "Ask your manager first.")
    pdf.save()
    (tmp_path / "box.pdf").write_bytes(buf.getvalue())
    [doc] = read_file(tmp_path / "box.pdf")
    assert [(type(s).__name__, s.text) for s in doc.sections] == [
        ("Section", "Important: read the whole policy.\nAsk your manager first.")]
