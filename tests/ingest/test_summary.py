"""One summary of an ingest run, rendered by the CLI (Rich) and the web app (Streamlit) with the same rows."""

from __future__ import annotations

import io

from rich.console import Console
from streamlit.testing.v1 import AppTest

from ingest import FileResult, IngestReport, print_summary, summarize
from tests.support.rendered import visible_text


def _report() -> IngestReport:
    report = IngestReport(kb="docs", added=2, unchanged=5, chunks_written=9, texts_encoded=9, tokens_encoded=1108,
                          encode_seconds=0.5, total_seconds=1.25, ignored_files=3)
    report.failed.append(FileResult("[red]odd[/red] name.pdf", "failed", reason="encrypted [bold]x[/bold]"))
    return report


def test_summary_rows_and_totals() -> None:
    summary = summarize(_report())
    assert summary.outcomes == [("added", "2"), ("updated", "0"), ("unchanged", "5"), ("pruned", "0"),
                                ("failed", "1 files")]
    assert summary.failed == [("[red]odd[/red] name.pdf", "encrypted [bold]x[/bold]")]
    assert summary.totals == ("chunks written 9, deleted 0; encoded 9 chunks, 1,108 tokens in 0.5s (2,216 tokens/s); "
                              "total 1.2s; 3 files of unsupported types ignored")
    assert summarize(IngestReport(kb="docs", dry_run=True)).title == "Knowledge base 'docs' (dry run: nothing written)"
    assert "no encoding needed" in summarize(IngestReport(kb="docs")).totals


def test_cli_prints_the_summary_with_file_text_as_text() -> None:
    out = io.StringIO()
    print_summary(Console(file=out, width=200, color_system=None), _report())
    text = out.getvalue()
    summary = summarize(_report())
    assert summary.title in text and summary.totals in text
    for outcome, documents in summary.outcomes:
        assert any(line.split() == ["│", outcome, "│", *documents.split(), "│"] for line in text.splitlines())
    assert "[red]odd[/red] name.pdf" in text and "encrypted [bold]x[/bold]" in text


def _app() -> None:
    from tests.ingest.test_summary import _report
    from ui.uploads import show_summary

    show_summary(_report())


def test_web_app_shows_the_same_summary() -> None:
    at = AppTest.from_function(_app).run()
    assert not at.exception
    summary = summarize(_report())
    assert at.markdown[0].value == f"**{summary.title}**"
    table = at.table[0].value
    assert list(zip(table["outcome"], table["documents"], strict=True)) == summary.outcomes
    assert [c.value for c in at.caption] == [summary.totals]
    assert visible_text(at.error[0].value) == "Failed files\n\n[red]odd[/red] name.pdf: encrypted [bold]x[/bold]"


def test_item15_files_read_by_ocr_are_listed_with_their_pages() -> None:
    report = _report()
    report.files += [FileResult("scan.pdf", "added", 1, 3, ocr="pages 2-3"), FileResult("a.md", "added", 1, 1),
                     FileResult("photo.png", "updated", 1, 1, ocr="image")]
    assert summarize(report).ocr == [("scan.pdf", "pages 2-3"), ("photo.png", "image")]
    assert summarize(_report()).ocr == []
    out = io.StringIO()
    print_summary(Console(file=out, width=200, color_system=None), report)
    rows = [line.split("│")[1:3] for line in out.getvalue().splitlines() if line.count("│") == 3]
    assert [[cell.strip() for cell in row] for row in rows if "." in row[0]][-2:] == [
        ["scan.pdf", "pages 2-3"], ["photo.png", "image"]]
