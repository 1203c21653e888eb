"""Tables kept as tables: DOCX and HTML tables long enough for several chunks, ingested into real milvus-lite,
come back as Markdown rows with the header in every chunk and no row split."""

from __future__ import annotations

import io
from pathlib import Path

import docx
import pytest

from ingest.chunker import TokenChunker
from ingest.pipeline import IngestPipeline
from ingest.readers import read_file
from ingest.readers.tables import TableSection, chunk_rows, chunk_section, markdown_table
from rag.config import Settings
from rag.encoder import Encoder
from rag.store import MilvusStore

HEADER = ["Code", "Benefit", "Who qualifies"]
ROWS = [
    [f"B{i:02d}", f"Benefit {i}: 员工每年享有 {i} 天额外假期 and a {i * 10} euro allowance", f"staff level {i % 4}"]
    for i in range(40)
]
HEAD = "| Code | Benefit | Who qualifies |\n| --- | --- | --- |"
ROW_LINES = [f"| {a} | {b} | {c} |" for a, b, c in ROWS]


def long_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Benefits", level=1)
    document.add_paragraph("The table below lists every benefit.")
    table = document.add_table(rows=len(ROWS) + 1, cols=3)
    for row, cells in zip(table.rows, [HEADER, *ROWS], strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    document.add_paragraph("Ask the People team about anything not listed.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def long_html() -> str:
    head = "".join(f"<th>{h}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in ROWS)
    return (f"<html><body><h1>Benefits</h1><p>The table below lists every benefit.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<p>Ask the People team about anything not listed.</p></body></html>")


@pytest.mark.parametrize(("name", "data"), [("benefits.docx", long_docx()), ("benefits.html", long_html().encode())])
def test_a_long_table_is_stored_with_its_header_in_every_chunk_and_no_row_split(
    settings: Settings, encoder: Encoder, tmp_path: Path, name: str, data: bytes
) -> None:
    (tmp_path / name).write_bytes(data)
    with MilvusStore(settings.milvus) as store:
        report = IngestPipeline(settings, encoder, store).run([tmp_path / name])
        assert report.ok
        chunks = [c["text"] for c in store.open(settings.kb.name).chunks(name)]

    table_chunks = [c for c in chunks if "| B" in c]
    assert len(table_chunks) > 2  # 40 rows do not fit one chunk of 96 tokens
    rows_seen = []
    for chunk in table_chunks:
        assert chunk.startswith(f"Benefits\n{HEAD}\n"), chunk  # heading and header lead every chunk
        rows_seen += chunk.split("\n")[3:]
    assert rows_seen == ROW_LINES  # each row whole, once, in order
    assert chunks[0] == "Benefits\nThe table below lists every benefit."
    assert chunks[-1] == "Benefits\nAsk the People team about anything not listed."
    assert all(encoder.count_tokens(c) <= settings.chunking.chunk_tokens for c in chunks)


def test_html_table_header_from_thead_or_first_row_caption_and_spans(tmp_path: Path) -> None:
    html = """<h2>Allowances</h2>
    <table><caption>Monthly, in euros</caption>
      <thead><tr><th>Item</th><th colspan="2">Amount</th></tr><tr><th></th><th>2024</th><th>2025</th></tr></thead>
      <tr><td>Internet | fibre</td><td>30</td><td>35</td></tr><tr style="display:none"><td>SECRET</td></tr>
    </table>
    <table><tr><td>Name</td><td>Phone</td></tr><tr><td>Desk</td><td>1234</td></tr></table>
    <table><tr><td><table><tr><td>inner</td></tr></table></td><td>layout</td></tr></table>"""
    (tmp_path / "a.html").write_text(html, encoding="utf-8")
    [doc] = read_file(tmp_path / "a.html")
    assert [(type(s).__name__, s.text) for s in doc.sections] == [
        ("TableSection", "Allowances\nMonthly, in euros\n| Item | Amount |  |\n|  | 2024 | 2025 |\n"
                         "| --- | --- | --- |\n" r"| Internet \| fibre | 30 | 35 |"),
        ("TableSection", "Allowances\n| Name | Phone |\n| --- | --- |\n| Desk | 1234 |"),
        ("Section", "Allowances\ninner | layout"),  # a layout table (one holding a table) is read as text
    ]
    assert "SECRET" not in doc.content


def test_markdown_table_pads_rows_and_a_single_row_has_no_header() -> None:
    assert markdown_table([["a", "b"], ["1"], ["", ""]]) == ("| a | b |\n| --- | --- |", ["| 1 |  |"])
    assert markdown_table([["only", "row"]]) == ("", ["| only | row |"])
    assert markdown_table([[None, " "]]) is None


def test_a_row_too_long_for_one_chunk_is_cut_and_no_chunk_is_over_the_limit(encoder: Encoder) -> None:
    chunker = TokenChunker(encoder.tokenizer, 40, 0)
    long_row = "| " + " ".join(f"word{i}" for i in range(120)) + " |"
    section = TableSection.of("T\n| h |\n| --- |", ["| a |", long_row, "| b |"])
    chunks = chunk_rows(section.head, section.rows, chunker)
    assert chunks[0] == "T\n| h |\n| --- |\n| a |" and chunks[-1] == "T\n| h |\n| --- |\n| b |"
    assert len(chunks) > 3 and all(chunker.count(c) <= 40 for c in chunks)
    assert "".join(c.removeprefix("T\n| h |\n| --- |\n") for c in chunks[1:-1]).replace(" ", "") == \
        long_row.replace(" ", "")


def test_a_big_sheet_reports_chunking_progress(encoder: Encoder) -> None:
    chunker = TokenChunker(encoder.tokenizer, 96, 0)
    rows = [f"Code: R{i:05d} | Description: item number {i} of the price list" for i in range(6000)]
    heard: list[tuple[int, int]] = []
    chunks = chunk_section(TableSection.of("Prices", rows), chunker, lambda done, total: heard.append((done, total)))
    total = sum(len(r) + 1 for r in rows)
    assert len(heard) >= 3 and heard[-1] == (total, total) and [d for d, _ in heard] == sorted(d for d, _ in heard)
    assert [line for c in chunks for line in c.split("\n")[1:]] == rows
