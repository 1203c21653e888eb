"""ingest.workers: worker processes read and chunk ahead of the encoder, and the knowledge base is the same."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingest.chunker import TokenChunker
from ingest.pipeline import IngestPipeline
from ingest.report import FileResult, IngestReport
from rag.config import Settings
from rag.encoder import Encoder
from rag.store import MilvusStore
from tests.conftest import EXAMPLES
from tests.ingest.test_pipeline_writes import rows


class Recorded:
    """A progress listener that keeps the chunking and OCR events and the files' results."""

    def __init__(self) -> None:
        self.chunked: list[tuple[str, int, int]] = []
        self.files: list[FileResult] = []

    def started(self, files: int) -> None:
        pass

    def file_done(self, result: FileResult) -> None:
        self.files.append(result)

    def chunks_planned(self, chunks: int) -> None:
        pass

    def encoded(self, texts: int, tokens: int) -> None:
        pass

    def chunking(self, source: str, done_chars: int, total_chars: int) -> None:
        self.chunked.append((source, done_chars, total_chars))

    def ocr(self, source: str, done_pages: int, total_pages: int) -> None:
        pass


def folder(tmp_path: Path) -> Path:
    """The examples, a text long enough to report its chunking, a PDF that is not one, and an empty file."""
    data = tmp_path / "data"
    shutil.copytree(EXAMPLES, data)
    (data / "long.txt").write_text("Leave policy. Employees get fifteen days. " * 2_600, encoding="utf-8")
    (data / "broken.pdf").write_bytes(b"%PDF-1.7 this is not really a PDF")
    (data / "empty.md").write_text("", encoding="utf-8")
    return data


def ingest(settings: Settings, encoder: Encoder, data: Path, workers: int) -> tuple[IngestReport, Recorded]:
    progress = Recorded()
    with MilvusStore(settings.milvus) as store, IngestPipeline(settings, encoder, store) as pipeline:
        assert pipeline.planner.wait_ready(120) == (workers > 0)
        return pipeline.run([data], progress=progress), progress


def outcomes(report: IngestReport) -> list[tuple[str, str, int, int, str]]:
    return sorted((f.source, f.outcome, f.documents, f.chunks, f.reason) for f in report.files)


def test_workers_store_what_the_ingest_process_stores_and_relay_progress(
    make_settings: Callable[..., Settings], encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = folder(tmp_path)
    here = make_settings(tmp_path / "here", ingest={"documents_per_batch": 3, "workers": 0})
    pool = make_settings(tmp_path / "pool", ingest={"documents_per_batch": 3, "workers": 2})
    inline, inline_progress = ingest(here, encoder, data, 0)

    splits: list[Any] = []
    original = TokenChunker.split
    monkeypatch.setattr(TokenChunker, "split", lambda self, *a: splits.append(a) or original(self, *a))
    workers, workers_progress = ingest(pool, encoder, data, 2)
    assert not splits  # every file was chunked in a worker process, none in this one

    assert outcomes(workers) == outcomes(inline)
    assert (workers.added, len(workers.failed), workers.chunks_written) == (
        inline.added, len(inline.failed), inline.chunks_written)
    assert {f.source for f in workers.failed} == {"broken.pdf", "empty.md"}
    assert rows(pool) == rows(here)
    # A long text reports its chunking from the worker, window by window, as it does in the ingest process.
    assert workers_progress.chunked == inline_progress.chunked
    long = [c for c in workers_progress.chunked if c[0] == "long.txt"]
    assert len(long) >= 2 and long[-1][1] == long[-1][2] > 100_000
    # Results come in the files' order, as without workers.
    assert [f.source for f in workers_progress.files] == [f.source for f in inline_progress.files]

    # An unchanged folder: nothing is encoded, the same with and without workers.
    encoded = encoder.texts_encoded
    again, _ = ingest(pool, encoder, data, 2)
    assert (again.added, again.updated, again.unchanged) == (0, 0, inline.added)
    assert encoder.texts_encoded == encoded
