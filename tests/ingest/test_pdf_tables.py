"""Ruled tables in text PDFs (drawn by reportlab, found by pdfplumber) come back as Markdown rows on their page."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

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


def long_report_pdf(pages: int, every: int) -> bytes:
    """``pages`` pages of text, a ruled table on every ``every``-th."""
    styles = getSampleStyleSheet()
    story: list[Any] = []
    for number in range(1, pages + 1):
        story.append(Paragraph(f"Chapter {number}: sales commentary.", styles["Normal"]))
        if number % every == 0:
            table = Table(SALES)
            table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
            story.append(table)
        story.append(PageBreak())
    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=A4, invariant=1).build(story[:-1])
    return buf.getvalue()


def test_a_long_pdf_reports_each_page_read_then_each_page_searched_for_tables(tmp_path: Path) -> None:
    (tmp_path / "long.pdf").write_bytes(long_report_pdf(60, every=10))
    events: list[tuple[int, int]] = []
    [doc] = read_file(tmp_path / "long.pdf", on_read_page=lambda done, total: events.append((done, total)))
    [quiet] = read_file(tmp_path / "long.pdf")
    assert doc.sections == quiet.sections
    assert sum(isinstance(s, TableSection) for s in doc.sections) == 6
    # its 60 pages, then the 6 that draw lines (searched by pdfplumber), then done
    assert events == [(n, 66) for n in range(1, 67)] + [(66, 66)]

    (tmp_path / "short.pdf").write_bytes(long_report_pdf(50, every=10))
    events.clear()
    read_file(tmp_path / "short.pdf", on_read_page=lambda done, total: events.append((done, total)))
    assert events == []  # a PDF of up to 50 pages is read in moments: no progress


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
