"""What the end of an ingest run shows, as plain rows and lines: the CLI draws them with Rich, the web app with
Streamlit, so both say the same thing. Texts from files (names, reasons) are raw: each renderer escapes them."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.report import IngestReport

OUTCOMES = ("added", "updated", "unchanged", "pruned")


@dataclass(frozen=True)
class IngestSummary:
    """The summary of one run: documents per outcome, the failed files with reasons, the totals line."""

    kb: str
    dry_run: bool
    outcomes: list[tuple[str, str]]  # (outcome, documents), the last row "failed" counting files
    failed: list[tuple[str, str]]  # (file, reason)
    totals: str
    ocr: list[tuple[str, str]] = field(default_factory=list)  # (file, what was OCR'd: "pages 2-3", "image")

    @property
    def title(self) -> str:
        return f"Knowledge base '{self.kb}'" + (" (dry run: nothing written)" if self.dry_run else "")


def summarize(report: IngestReport) -> IngestSummary:
    """The summary of ``report``, for any renderer."""
    outcomes = [(outcome, str(getattr(report, outcome))) for outcome in OUTCOMES]
    outcomes.append(("failed", f"{len(report.failed)} files"))
    rate = f"{report.tokens_per_second:,.0f} tokens/s" if report.encode_seconds else "no encoding needed"
    totals = (
        f"chunks written {report.chunks_written}, deleted {report.chunks_deleted}; encoded {report.texts_encoded} "
        f"chunks, {report.tokens_encoded:,} tokens in {report.encode_seconds:.1f}s ({rate}); "
        f"total {report.total_seconds:.1f}s"
        + (f"; {report.ignored_files} files of unsupported types ignored" if report.ignored_files else "")
        + (f"; {report.recognised_files} unchanged files known by their size and times, not read"
           if report.recognised_files else "")
    )
    failed = [(result.source, result.reason or "") for result in report.failed]
    ocr = [(result.source, result.ocr) for result in report.files if result.ocr]
    return IngestSummary(report.kb, report.dry_run, outcomes, failed, totals, ocr)
