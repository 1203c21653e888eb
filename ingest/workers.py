"""Parsing and chunking in worker processes, a group ahead of the encoder (``ingest.workers``).

With ``workers`` 0 every file is planned in the ingest process, just before its group is encoded. With N > 0,
N processes (spawned: no torch, CUDA or gRPC state is inherited) parse and chunk the next group's changed files,
in a few batches at once, while this process encodes and writes the current group. Whether a file is unreadable or
unchanged is still decided here (a hash of its bytes: cheap, and a re-ingest then sends nothing). Outcomes come
back in the files' order, so reports and writes are the same as with 0. Progress from a worker (chunking a long
text, OCR pages) is relayed through a queue and handed to the listener in this process only, while it waits.

Until a worker has started (imports take 2-4 s), groups are planned here, so a small run never waits for the
pool. A worker that dies (a reader library crashing, the process killed) breaks the pool: the files sent to it
that had not come back fail with a reason (the next run retries them), and the pool is started again.
"""

from __future__ import annotations

import multiprocessing
import queue
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ingest.discovery import FoundFile
from ingest.planner import FileOutcome, FilePlanner, PlannerSpec, PlanningProgress, check_file
from rag.store import StoredDocument

Item = tuple[FoundFile, str, list[StoredDocument]]  # a file, its source (document id base), its stored documents
WORKER_DIED = ("the process reading it stopped unexpectedly (a reader library crashed, or it was killed); "
               "run rag-ingest again to retry it, or set ingest.workers: 0 to read in the ingest process")

_planner: FilePlanner | None = None  # in a worker: its planner, built once by _start_worker
_events: Any = None  # in a worker: the queue its progress events go to


class _RelayedProgress:
    """A worker's progress listener: each event goes onto the queue the ingest process reads."""

    def chunking(self, source: str, done_chars: int, total_chars: int) -> None:
        _events.put(("chunking", source, done_chars, total_chars))

    def ocr(self, source: str, done_pages: int, total_pages: int) -> None:
        _events.put(("ocr", source, done_pages, total_pages))


def _start_worker(spec: PlannerSpec, events: Any) -> None:
    global _planner, _events
    _planner, _events = FilePlanner(spec), events
    events.put(("ready",))


def _plan_in_worker(batch: list[tuple[Item, str]]) -> list[FileOutcome]:
    assert _planner is not None, "_start_worker did not run"
    return [_planner.plan_changed(found, source, file_hash, stored, _RelayedProgress())
            for (found, source, stored), file_hash in batch]


@dataclass
class GroupPlan:
    """A group handed to the planner. When it went to the pool: each file's outcome when it was decided here
    (unreadable, unchanged: cheap, nothing to send), and the workers' tasks (the files' positions, a future)."""

    items: list[Item]
    decided: list[FileOutcome | None] | None = None
    tasks: list[tuple[list[int], Future[list[FileOutcome]]]] = field(default_factory=list)


@contextmanager
def _main_script_not_rerun() -> Iterator[None]:
    """Processes spawned meanwhile do not run the parent's main script again, as spawn does by default so that
    functions defined there can be unpickled. Workers need nothing from it, and re-running it is slow (a script
    importing torch), wrong (a script without ``if __name__ == "__main__"`` would ingest again) or impossible (a
    generated bootstrap, as pytest-xdist's workers have: the spawned process dies)."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if name in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None  # type: ignore[assignment]  # spawn reads the attribute: None means "no module to import"
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class GroupPlanner:
    """Plans groups of files in this process (``workers`` 0) or in a pool of worker processes."""

    def __init__(self, spec: PlannerSpec, workers: int) -> None:
        self.spec = spec
        self.workers = workers
        self._local: FilePlanner | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._events: Any = None
        self._ready = False
        self._held: list[tuple[Any, ...]] = []  # progress events read while no listener was at hand
        self._start_pool()

    @property
    def ahead(self) -> bool:
        """Whether groups are planned in the background (so the pipeline may hand over the next one early)."""
        return self.workers > 0

    def close(self) -> None:
        """Stop the workers (planning goes on in this process, were another group submitted)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.workers = 0

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until a worker has started (a benchmark or test that wants the workers used from the first group)."""
        deadline = time.monotonic() + timeout_s
        while self.workers > 0 and not self._ready and time.monotonic() < deadline:
            self._drain(None)
            time.sleep(0.05)
        return self._ready

    def submit(self, items: Sequence[Item]) -> GroupPlan:
        """Start planning ``items``; their outcomes come from :meth:`outcomes`, in order."""
        plan = GroupPlan(list(items))
        if self.workers > 0:
            self._drain(None)
            if self._pool is None:
                self._start_pool()
            if self._ready and self._pool is not None:
                try:
                    self._send(plan)
                except BrokenProcessPool:  # a worker died since the last group: plan this one here
                    self._discard_pool()
                    plan.decided, plan.tasks = None, []
        return plan

    def outcomes(self, plan: GroupPlan, progress: PlanningProgress) -> list[tuple[Item, FileOutcome]]:
        """Each file of ``plan`` with its outcome, in order; the workers' progress goes to ``progress`` meanwhile."""
        if plan.decided is None:
            if self._local is None:
                self._local = FilePlanner(self.spec)
            return [(item, self._local.plan(*item, progress)) for item in plan.items]
        waiting = {future for _positions, future in plan.tasks}
        while waiting:
            _done, waiting = wait(waiting, timeout=0.1, return_when=FIRST_COMPLETED)
            self._drain(progress)
        self._drain(progress)
        results = list(plan.decided)
        for positions, future in plan.tasks:
            try:
                outcomes = future.result()
            except BrokenProcessPool:
                outcomes = [FileOutcome("failed", WORKER_DIED)] * len(positions)
                self._discard_pool()
            for position, outcome in zip(positions, outcomes, strict=True):
                results[position] = outcome
        planned = [outcome for outcome in results if outcome is not None]
        assert len(planned) == len(plan.items), "a file was neither decided here nor sent to a worker"
        return list(zip(plan.items, planned, strict=True))

    def _send(self, plan: GroupPlan) -> None:
        """Decide here what needs no parsing; send the changed files to the workers in a few batches (one task per
        file cost more in pickling and queueing than the parsing of a small file)."""
        assert self._pool is not None
        plan.decided = []
        changed: list[tuple[int, tuple[Item, str]]] = []
        for position, item in enumerate(plan.items):
            outcome, file_hash = check_file(item[0], item[2], self.spec.pipeline_id)
            plan.decided.append(outcome)
            if outcome is None:
                changed.append((position, (item, file_hash)))
        batches = min(len(changed), 2 * self.workers)  # twice as many as workers: a slow file holds up less
        for b in range(batches):
            part = changed[b * len(changed) // batches : (b + 1) * len(changed) // batches]
            future = self._pool.submit(_plan_in_worker, [work for _position, work in part])
            plan.tasks.append(([position for position, _work in part], future))

    def _start_pool(self) -> None:
        if self.workers <= 0:
            return
        context = multiprocessing.get_context("spawn")
        self._events = context.Queue()
        self._ready = False
        self._pool = ProcessPoolExecutor(self.workers, context, initializer=_start_worker,
                                         initargs=(self.spec, self._events))
        # A process starts per task submitted while none is idle: empty tasks start them all now, while the run
        # sets up, instead of one by one later (and no process is started after this).
        with _main_script_not_rerun():
            for _ in range(self.workers):
                self._pool.submit(int)

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _drain(self, progress: PlanningProgress | None) -> None:
        """Hand the queued worker events to ``progress`` (None: hold them for the next listener)."""
        while self._events is not None:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if event[0] == "ready":
                self._ready = True
            else:
                self._held.append(event)
        if progress is not None:
            held, self._held = self._held, []
            for name, *args in held:
                getattr(progress, name)(*args)
