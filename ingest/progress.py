"""Rich rendering of an ingest run: a live progress bar, then the summary and the failed files."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clikit import safe
from ingest.report import FileResult, IngestReport
from ingest.summary import summarize


class RichProgress:
    """ProgressListener drawing files done, chunks encoded and tokens/s."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files · {task.fields[chunks]} chunks · {task.fields[rate]} tokens/s"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("ingest", total=None, chunks="0/0", rate="-")
        self.chunks_done = 0
        self.chunks_total = 0
        self.tokens = 0
        self.encode_seconds = 0.0  # time spent encoding, as the report counts it (not reading or writing)
        self.encode_mark: float | None = None  # when the batch now being encoded started
        self.deciles: dict[tuple[str, str], int] = {}  # the last tenth logged per (stage, file)

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def started(self, files: int) -> None:
        self.progress.update(self.task, total=files)

    def file_done(self, result: FileResult) -> None:
        if result.outcome != "pruned":
            self.progress.advance(self.task)
        if result.outcome == "failed":
            self.console.print(f"[red]failed[/red]    {safe(result.source)}: {safe(result.reason)}", highlight=False)
        elif not self.console.is_terminal:
            # Logs and pipes get one line per file instead of a redrawn bar.
            self.console.print(
                f"{result.outcome:<11} {safe(result.source)} ({result.documents} documents, {result.chunks} chunks"
                + (f"; OCR: {result.ocr}" if result.ocr else "") + ")",
                highlight=False,
            )

    def chunks_planned(self, chunks: int) -> None:
        """The pipeline starts encoding ``chunks`` texts now: the encoding time is counted from here."""
        self.chunks_total += chunks
        self.encode_mark = time.perf_counter()
        self._refresh()

    def encoded(self, texts: int, tokens: int) -> None:
        """A batch is encoded: its time runs from the previous batch (or the start of encoding) until now."""
        now = time.perf_counter()
        if self.encode_mark is not None:
            self.encode_seconds += now - self.encode_mark
        self.encode_mark = now
        self.chunks_done += texts
        self.tokens += tokens
        self._refresh()

    def chunking(self, source: str, done_chars: int, total_chars: int) -> None:
        """A long document is being chunked: the bar says which and how far; logs get a line per tenth."""
        self._share("chunking", source, done_chars, total_chars)

    def reading(self, source: str, done_pages: int, total_pages: int) -> None:
        """A long PDF being read: the bar says which and how far; logs get a line per tenth."""
        self._share("reading", source, done_pages, total_pages)

    def _share(self, stage: str, source: str, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if self.console.is_terminal:
            self.progress.update(self.task, description=f"{stage} {safe(source)} {percent}%"
                                 if percent < 100 else "ingest")
        elif percent // 10 != self.deciles.get((stage, source)):
            self.deciles[(stage, source)] = percent // 10
            self.console.print(f"{stage:11} {safe(source)}: {percent}%", highlight=False)

    def ocr(self, source: str, done_pages: int, total_pages: int) -> None:
        """Pages being OCR'd (seconds each): the bar says which file and page; logs get a line per page."""
        if self.console.is_terminal:
            self.progress.update(self.task, description=f"OCR {safe(source)} page {done_pages + 1}/{total_pages}"
                                 if done_pages < total_pages else "ingest")
        elif done_pages:
            self.console.print(f"ocr         {safe(source)}: page {done_pages}/{total_pages}", highlight=False)

    def _refresh(self) -> None:
        rate = f"{self.tokens / self.encode_seconds:,.0f}" if self.encode_seconds > 0 else "-"
        self.progress.update(self.task, chunks=f"{self.chunks_done}/{self.chunks_total}", rate=rate)


def print_summary(console: Console, report: IngestReport) -> None:
    """The summary table (documents per outcome), one row per failed file with its reason, the totals line."""
    summary = summarize(report)
    table = Table(title=safe(summary.title), show_header=True, header_style="bold")
    table.add_column("outcome")
    table.add_column("documents", justify="right")
    for outcome, documents in summary.outcomes:
        table.add_row("[red]failed[/red]" if outcome == "failed" and summary.failed else outcome, documents)
    console.print(table)
    if summary.failed:
        failed = Table(title="Failed files", header_style="bold red")
        failed.add_column("file", overflow="fold")
        failed.add_column("reason", overflow="fold")
        for source, reason in summary.failed:
            failed.add_row(safe(source), safe(reason))
        console.print(failed)
    if summary.ocr:
        ocr = Table(title="OCR'd (no usable text layer, or an image)", header_style="bold")
        ocr.add_column("file", overflow="fold")
        ocr.add_column("OCR'd", overflow="fold")
        for source, pages in summary.ocr:
            ocr.add_row(safe(source), pages)
        console.print(ocr)
    console.print(safe(summary.totals), highlight=False)
