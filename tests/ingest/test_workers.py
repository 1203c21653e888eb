"""ingest.workers: worker processes read and chunk ahead of the encoder, and the knowledge base is the same."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import shutil
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingest.chunker import TokenChunker
from ingest.pipeline import IngestPipeline
from ingest.report import FileResult, IngestReport
from ingest.workers import WORKER_DIED, GroupPlanner, timed_out
from rag.config import Settings
from rag.encoder import Encoder
from rag.store import MilvusStore
from tests.conftest import EXAMPLES
from tests.ingest.conftest import make_pdf
from tests.ingest.test_pipeline_writes import rows


class Recorded:
    """A progress listener that keeps the chunking and OCR events and the files' results."""

    def __init__(self) -> None:
        self.chunked: list[tuple[str, int, int]] = []
        self.read: list[tuple[str, int, int]] = []
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

    def reading(self, source: str, done_pages: int, total_pages: int) -> None:
        self.read.append((source, done_pages, total_pages))


def folder(tmp_path: Path) -> Path:
    """The examples, a text long enough to report its chunking, a PDF that is not one, and an empty file."""
    data = tmp_path / "data"
    shutil.copytree(EXAMPLES, data)
    (data / "long.txt").write_text("Leave policy. Employees get fifteen days. " * 2_600, encoding="utf-8")
    (data / "broken.pdf").write_bytes(b"%PDF-1.7 this is not really a PDF")
    (data / "empty.md").write_text("", encoding="utf-8")
    (data / "long.pdf").write_bytes(make_pdf([f"Page {n}: the leave policy, continued." for n in range(1, 61)]))
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
    # So does a long PDF its reading, page by page.
    assert workers_progress.read == inline_progress.read
    assert [done for source, done, _total in workers_progress.read if source == "long.pdf"][-3:] == [59, 60, 60]
    # Results come in the files' order, as without workers.
    assert [f.source for f in workers_progress.files] == [f.source for f in inline_progress.files]

    # An unchanged folder: nothing is encoded, the same with and without workers.
    encoded = encoder.texts_encoded
    again, _ = ingest(pool, encoder, data, 2)
    assert (again.added, again.updated, again.unchanged) == (0, 0, inline.added)
    assert encoder.texts_encoded == encoded


def six_files(tmp_path: Path) -> Path:
    """a-note.txt, b-long.txt (long enough to report its chunking), then c- to f-note.txt."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a-note.txt").write_text("Remote work: three days a week.", encoding="utf-8")
    (data / "b-long.txt").write_text("Leave policy. Employees get fifteen days. " * 30_000, encoding="utf-8")
    for name in ("c-note.txt", "d-note.txt", "e-note.txt", "f-note.txt"):
        (data / name).write_text(f"{name}: the office opens at nine.", encoding="utf-8")
    return data


class KillsWorkers(Recorded):
    """Kills the worker processes when the first chunking progress of a long text arrives from one of them."""

    def __init__(self) -> None:
        super().__init__()
        self.killed = 0

    def chunking(self, source: str, done_chars: int, total_chars: int) -> None:
        super().chunking(source, done_chars, total_chars)
        if not self.killed:
            for child in multiprocessing.active_children():
                child.kill()
                child.join()
                self.killed += 1


def test_a_worker_that_dies_fails_the_files_it_was_sent_and_the_next_run_ingests_them(
    make_settings: Callable[..., Settings], encoder: Encoder, tmp_path: Path
) -> None:
    data = six_files(tmp_path)
    settings = make_settings(tmp_path, ingest={"documents_per_batch": 2, "workers": 1})
    progress = KillsWorkers()
    with MilvusStore(settings.milvus) as store, IngestPipeline(settings, encoder, store) as pipeline:
        assert pipeline.planner.wait_ready(120)
        report = pipeline.run([data], progress=progress)
    assert progress.killed
    failed = {f.source: f.reason for f in report.failed}
    assert "b-long.txt" in failed and all(reason == WORKER_DIED for reason in failed.values())
    assert report.added + len(failed) == 6 and report.added >= 3  # a, and the groups planned here after the death
    again, _ = ingest(make_settings(tmp_path, ingest={"documents_per_batch": 2, "workers": 0}), encoder, data, 0)
    assert again.ok and again.added == len(failed) and again.unchanged == report.added


def wake_up(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # killed meanwhile, as it should have been
        os.kill(pid, signal.SIGCONT)


class StopsWorkers(Recorded):
    """Stops (SIGSTOP: hung, silent) the worker processes when the first chunking progress of a long text arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped: list[int] = []

    def chunking(self, source: str, done_chars: int, total_chars: int) -> None:
        super().chunking(source, done_chars, total_chars)
        if not self.stopped:
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGSTOP)
                self.stopped.append(child.pid)
                # woken after a minute, so that an ingest that does not stop it fails the test instead of hanging
                wake = threading.Timer(60, wake_up, args=(child.pid,))
                wake.daemon = True
                wake.start()


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="stops a process with SIGSTOP")
def test_a_worker_silent_on_a_file_past_the_limit_is_stopped_and_only_that_file_fails(
    make_settings: Callable[..., Settings], encoder: Encoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = six_files(tmp_path)
    # one group of six files, sent as two tasks of three (a, b, c and d, e, f) to the one worker
    settings = make_settings(tmp_path, ingest={"documents_per_batch": 6, "workers": 1, "file_timeout_s": 3})
    progress = StopsWorkers()
    with MilvusStore(settings.milvus) as store, IngestPipeline(settings, encoder, store) as pipeline:
        assert pipeline.planner.wait_ready(120)
        with caplog.at_level(logging.WARNING, logger="ingest.workers"):
            report = pipeline.run([data], progress=progress)
        assert pipeline.planner.workers == 1  # a new worker took over: planning did not fall back to this process
    assert progress.stopped
    assert [(f.source, f.reason) for f in report.failed] == [("b-long.txt", timed_out(3))]
    assert "no progress on a file for 3 s" in caplog.text
    # the files sent with it, before and after it in its task and in the worker's next task, were planned again
    with MilvusStore(settings.milvus) as store:
        stored = set(store.open(settings.kb.name).documents())
    assert report.added == 5 and stored == {f"{n}-note.txt" for n in "acdef"}


def test_a_worker_that_cannot_start_leaves_planning_here_with_a_warning(
    make_settings: Callable[..., Settings], encoder: Encoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path)  # no workers of its own: only its planner spec is used
    with MilvusStore(settings.milvus) as store, IngestPipeline(settings, encoder, store) as pipeline:
        spec = dataclasses.replace(pipeline.planner_spec, tokenizer_json="not a tokenizer")  # its chunker fails
        planner = GroupPlanner(spec, 1)
        with caplog.at_level(logging.WARNING, logger="ingest.workers"):
            assert not planner.wait_ready(120)
        assert planner.workers == 0 and not planner.ahead  # not started again, group after group
        assert "stopped before it started" in caplog.text
        planner.close()
