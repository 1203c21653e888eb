"""What an ingest run did, and the progress events it emits while running."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

Outcome = Literal["added", "updated", "unchanged", "pruned", "failed"]


@dataclass
class FileResult:
    """The outcome for one file: documents per outcome, chunks written, or the reason it failed."""

    source: str
    outcome: Outcome
    documents: int = 0
    chunks: int = 0
    reason: str = ""
    ocr: str = ""  # what was OCR'd in this run: "pages 2, 4-5", "image", or ""


@dataclass
class IngestReport:
    """Counts are documents (a .csv/.jsonl row is a document); ``failed`` lists files with reasons."""

    kb: str
    dry_run: bool = False
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    pruned: int = 0
    failed: list[FileResult] = field(default_factory=list)
    files: list[FileResult] = field(default_factory=list)
    chunks_written: int = 0
    chunks_deleted: int = 0
    texts_encoded: int = 0
    tokens_encoded: int = 0
    encode_seconds: float = 0.0
    total_seconds: float = 0.0
    ignored_files: int = 0
    recognised_files: int = 0  # unchanged files known by their stat, without reading them (ingest.file_hashes)

    def count(self, outcome: Outcome, documents: int = 1) -> None:
        if outcome != "failed":
            setattr(self, outcome, getattr(self, outcome) + documents)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_encoded / self.encode_seconds if self.encode_seconds else 0.0


class ProgressListener(Protocol):
    """Receives progress while a run goes on (the CLI draws a Rich bar, the UI a Streamlit one)."""

    def started(self, files: int) -> None: ...

    def file_done(self, result: FileResult) -> None: ...

    def chunks_planned(self, chunks: int) -> None: ...

    def encoded(self, texts: int, tokens: int) -> None: ...

    def chunking(self, source: str, done_chars: int, total_chars: int) -> None:
        """A long document is being chunked: ``done_chars`` of its ``total_chars`` characters so far."""
        ...

    def ocr(self, source: str, done_pages: int, total_pages: int) -> None:
        """Pages of ``source`` are being OCR'd (slow): ``done_pages`` of ``total_pages`` so far (0 at the start)."""
        ...

    def reading(self, source: str, done_pages: int, total_pages: int) -> None:
        """A long PDF is being read: ``done_pages`` of ``total_pages`` (its pages, then those searched for tables)."""
        ...


class SilentProgress:
    """A listener that ignores every event."""

    def started(self, files: int) -> None:
        pass

    def file_done(self, result: FileResult) -> None:
        pass

    def chunks_planned(self, chunks: int) -> None:
        pass

    def encoded(self, texts: int, tokens: int) -> None:
        pass

    def chunking(self, source: str, done_chars: int, total_chars: int) -> None:
        pass

    def ocr(self, source: str, done_pages: int, total_pages: int) -> None:
        pass

    def reading(self, source: str, done_pages: int, total_pages: int) -> None:
        pass
