"""Parsing and chunking in worker processes, a group ahead of the encoder (``ingest.workers``).

With ``workers`` 0 every file is planned in the ingest process, just before its group is encoded. With N > 0,
N processes (spawned: no torch, CUDA or gRPC state is inherited) parse and chunk the next group's changed files,
in a few batches at once, while this process encodes and writes the current group. Whether a file is unreadable or
unchanged is still decided here (a hash of its bytes: cheap, and a re-ingest then sends nothing). Outcomes come
back in the files' order, so reports and writes are the same as with 0. Progress from a worker (chunking a long
text, OCR pages) is handed to the listener in this process only, while it waits for a group.

Each worker has its own pipe, which carries its tasks one way and its progress events and results the other, in
the order they happened (a group's events reach the listener before its results), read by one thread per worker.
Nobody else holds a worker's end of its pipe, so a worker that dies (a reader library crashing, the process
killed, at any moment, even halfway through sending a result) ends its pipe: the files it had not sent back fail
with a reason (the next run retries them) and a new worker is started. (A ``ProcessPoolExecutor`` waits forever
when a worker dies halfway through sending a result: seen in this project's tests.)

Until a worker has started (imports take 2-4 s), groups are planned here, so a small run never waits for the
pool. A worker that dies before it has started is not started again: planning stays here, with a warning.
Closing asks the workers to stop, waits a few seconds for busy ones, then terminates them.

A file that hangs a reader library (a malformed PDF sending it into a loop) would hold up the ingest for ever.
A worker says when it starts each file, and relays its progress (PDF pages read, pages OCR'd, windows chunked);
one silent on a file for ``ingest.file_timeout_s`` is killed while the ingest waits for it. That file fails with a
reason, and the other files sent to that worker go to its replacement. In the ingest process itself (``workers``
0) nothing can stop a reader safely, so there is no limit.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from ingest.discovery import FoundFile
from ingest.planner import FileOutcome, FilePlanner, PlannerSpec, PlanningProgress, check_file
from rag.store import StoredDocument

Item = tuple[FoundFile, str, list[StoredDocument]]  # a file, its source (document id base), its stored documents
Work = tuple[Item, str]  # a changed file and its hash, as sent to a worker
WORKER_DIED = ("the process reading it stopped unexpectedly (a reader library crashed, or it was killed); "
               "run rag-ingest again to retry it, or set ingest.workers: 0 to read in the ingest process")
CLOSE_GRACE_S = 5.0  # how long closing waits for busy workers before terminating them
START_WAIT_S = 120.0  # how long files taken from a stopped worker wait for its replacement to start
log = logging.getLogger(__name__)


class _RelayedProgress:
    """A worker's progress listener: each event goes to the ingest process through the worker's pipe."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def chunking(self, source: str, done_chars: int, total_chars: int) -> None:
        self.connection.send(("chunking", source, done_chars, total_chars))

    def ocr(self, source: str, done_pages: int, total_pages: int) -> None:
        self.connection.send(("ocr", source, done_pages, total_pages))

    def reading(self, source: str, done_pages: int, total_pages: int) -> None:
        self.connection.send(("reading", source, done_pages, total_pages))


def timed_out(limit_s: float) -> str:
    """The reason of a file whose worker was stopped after ``limit_s`` without progress on it."""
    return (f"reading and chunking it showed no progress for {limit_s:g} s (ingest.file_timeout_s), so it was "
            "stopped; the file may be damaged. Raise the limit (0: none) to let it run longer")


def _work(spec: PlannerSpec, connection: Connection) -> None:
    """A worker process: build the planner, then plan each task received until told to stop (None) or orphaned.
    Ctrl-C in a terminal reaches the whole process group: the ingest process handles it (and closes the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    planner = FilePlanner(spec)
    progress = _RelayedProgress(connection)
    try:
        connection.send(("ready",))
        while (message := connection.recv()) is not None:
            task, batch = message
            outcomes = []
            for index, ((found, source, stored), file_hash) in enumerate(batch):
                connection.send(("file", task, index))
                outcomes.append(planner.plan_changed(found, source, file_hash, stored, progress))
            connection.send(("result", task, outcomes))
    except (EOFError, OSError):  # the ingest process is gone: nobody to plan for
        return


@dataclass(eq=False)
class _Worker:
    """A worker process, this process' end of its pipe, and the tasks sent to it that have not come back;
    ``current``: the task and index of the file it is on; ``heard_at``: when it last sent anything (monotonic)."""

    process: Any
    connection: Connection
    ready: bool = False
    tasks: list[int] = field(default_factory=list)
    current: tuple[int, int] | None = None
    heard_at: float = 0.0


def _listen(worker: _Worker, inbox: queue.Queue[tuple[_Worker, tuple[Any, ...]]]) -> None:
    """Move a worker's messages to the inbox as they come (so it never waits to send); its end: ``("died",)``."""
    while True:
        try:
            message = worker.connection.recv()
        except (EOFError, OSError):  # exited, or killed (even halfway through a message: nobody else holds its end)
            inbox.put((worker, ("died",)))
            return
        worker.heard_at = time.monotonic()
        inbox.put((worker, message))


@dataclass
class GroupPlan:
    """A group handed to the planner. When it went to the workers: each file's outcome when it was decided here
    (unreadable, unchanged: cheap, nothing to send), and the workers' tasks (their id, the files' positions)."""

    items: list[Item]
    decided: list[FileOutcome | None] | None = None
    tasks: list[tuple[int, list[int]]] = field(default_factory=list)
    work: dict[int, Work] = field(default_factory=dict)  # by position: what was sent, to send again


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
    """Plans groups of files in this process (``workers`` 0) or in worker processes."""

    def __init__(self, spec: PlannerSpec, workers: int, file_timeout_s: float = 0.0) -> None:
        """``file_timeout_s``: a worker silent on a file for this long is killed (0: never)."""
        self.spec = spec
        self.workers = workers
        self.file_timeout_s = file_timeout_s
        self._local: FilePlanner | None = None
        self._pool: list[_Worker] = []
        self._inbox: queue.Queue[tuple[_Worker, tuple[Any, ...]]] = queue.Queue()
        self._held: list[tuple[Any, ...]] = []  # progress events read while no listener was at hand
        self._results: dict[int, list[FileOutcome] | None] = {}  # None: its worker died first
        self._stopped: dict[int, int | None] = {}  # tasks of workers killed for a silent file: its index, or None
        self._tasks_sent = 0
        self._start_workers()

    @property
    def ahead(self) -> bool:
        """Whether groups are planned in the background (so the pipeline may hand over the next one early)."""
        return self.workers > 0

    @property
    def _ready(self) -> list[_Worker]:
        return [worker for worker in self._pool if worker.ready]

    def close(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """Stop the workers (planning goes on in this process, were another group submitted). A worker still busy
        after ``grace_s`` (a huge file parsed for a group that will not be used) is terminated."""
        pool, self._pool, self.workers = self._pool, [], 0
        for worker in pool:
            with suppress(OSError):  # already gone
                worker.connection.send(None)
        deadline = time.monotonic() + grace_s
        for worker in pool:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(grace_s)
        self._held.clear()

    def wait_ready(self, timeout_s: float, progress: PlanningProgress | None = None) -> bool:
        """Wait until a worker has started (a benchmark or test that wants the workers used from the first group;
        files sent again after a worker was stopped); progress read meanwhile goes to ``progress``."""
        deadline = time.monotonic() + timeout_s
        while self.workers > 0 and not self._ready and time.monotonic() < deadline:
            self._pump(progress, 0.05)
        return bool(self._ready)

    def submit(self, items: Sequence[Item]) -> GroupPlan:
        """Start planning ``items``; their outcomes come from :meth:`outcomes`, in order."""
        plan = GroupPlan(list(items))
        if self.workers > 0:
            self._pump(None, 0)
            self._start_workers()  # replaces workers that died
            if self._ready:
                self._send(plan)
        return plan

    def outcomes(self, plan: GroupPlan, progress: PlanningProgress) -> list[tuple[Item, FileOutcome]]:
        """Each file of ``plan`` with its outcome, in order; the workers' progress goes to ``progress`` meanwhile."""
        if plan.decided is None:
            return [(item, self._planner_here().plan(*item, progress)) for item in plan.items]
        results = list(plan.decided)
        tasks = plan.tasks
        while tasks:
            while any(task not in self._results for task, _positions in tasks):
                self._pump(progress, 0.1)
                self._stop_silent_workers()
            self._pump(progress, 0)
            again: list[int] = []  # positions taken from a worker stopped for a silent file: planned once more
            for task, positions in tasks:
                outcomes = self._results.pop(task)
                stopped = task in self._stopped  # (its result may still have come before the worker was killed)
                silent = self._stopped.pop(task, None)
                if outcomes is None and stopped:
                    for index, position in enumerate(positions):
                        if index == silent:
                            results[position] = FileOutcome("failed", timed_out(self.file_timeout_s))
                        else:
                            again.append(position)
                    continue
                outcomes = outcomes or [FileOutcome("failed", WORKER_DIED)] * len(positions)
                for position, outcome in zip(positions, outcomes, strict=True):
                    results[position] = outcome
            tasks = self._send_again(plan, again, results, progress) if again else []
        planned = [outcome for outcome in results if outcome is not None]
        assert len(planned) == len(plan.items), "a file was neither decided here nor sent to a worker"
        return list(zip(plan.items, planned, strict=True))

    def _planner_here(self) -> FilePlanner:
        if self._local is None:
            self._local = FilePlanner(self.spec)
        return self._local

    def _send(self, plan: GroupPlan) -> None:
        """Decide here what needs no parsing; send the changed files to the workers."""
        plan.decided = []
        for position, item in enumerate(plan.items):
            outcome, file_hash = check_file(item[0], item[2], self.spec.pipeline_id)
            plan.decided.append(outcome)
            if outcome is None:
                plan.work[position] = (item, file_hash)
        plan.tasks = self._dispatch(plan, list(plan.work))

    def _dispatch(self, plan: GroupPlan, positions: list[int]) -> list[tuple[int, list[int]]]:
        """Send the files at ``positions`` to the ready workers in a few batches (one task per file cost more in
        pickling and queueing than the parsing of a small file); returns the tasks sent."""
        tasks = []
        batches = min(len(positions), 2 * self.workers)  # twice as many as workers: a slow file holds up less
        for b in range(batches):
            part = positions[b * len(positions) // batches : (b + 1) * len(positions) // batches]
            self._tasks_sent += 1
            task = self._tasks_sent
            tasks.append((task, part))
            worker = min(self._ready, key=lambda w: len(w.tasks))  # the least busy
            worker.tasks.append(task)
            with suppress(OSError):  # it died: its listener reports it; the task fails with its other tasks
                worker.connection.send((task, [plan.work[position] for position in part]))
        return tasks

    def _send_again(
        self, plan: GroupPlan, positions: list[int], results: list[FileOutcome | None], progress: PlanningProgress
    ) -> list[tuple[int, list[int]]]:
        """Send the files at ``positions`` to the workers once one is ready (a stopped worker's replacement is
        starting); if none can start, plan them here (into ``results``). Returns the tasks sent."""
        self._start_workers()
        if self.wait_ready(START_WAIT_S, progress):
            return self._dispatch(plan, positions)
        for position in positions:
            (found, source, stored), file_hash = plan.work[position]
            results[position] = self._planner_here().plan_changed(found, source, file_hash, stored, progress)
        return []

    def _stop_silent_workers(self) -> None:
        """Kill each worker that has been on one file for ``file_timeout_s`` without a word; its listener then
        reports it gone, and what it was sent is settled in :meth:`outcomes`."""
        if self.file_timeout_s <= 0:
            return
        now = time.monotonic()
        for worker in self._pool:
            if worker.current is None or now - worker.heard_at < self.file_timeout_s:
                continue
            task, index = worker.current
            log.warning("an ingest worker showed no progress on a file for %g s (ingest.file_timeout_s): stopping it",
                        self.file_timeout_s)
            for other in worker.tasks:
                self._stopped[other] = index if other == task else None
            worker.current = None
            worker.process.kill()

    def _start_workers(self) -> None:
        """Start workers until there are ``workers`` of them."""
        context = multiprocessing.get_context("spawn")
        while len(self._pool) < self.workers:
            ours, theirs = context.Pipe()
            process = context.Process(target=_work, args=(self.spec, theirs), daemon=True, name="rag-ingest-worker")
            with _main_script_not_rerun():
                process.start()
            theirs.close()  # the worker's end is the worker's alone: its death ends the pipe
            worker = _Worker(process, ours)
            self._pool.append(worker)
            threading.Thread(target=_listen, args=(worker, self._inbox), daemon=True).start()

    def _pump(self, progress: PlanningProgress | None, timeout_s: float) -> None:
        """Handle the workers' messages (waiting up to ``timeout_s`` for the first); progress events go to
        ``progress`` (None: held for the next listener)."""
        wait_s = timeout_s
        while True:
            try:
                worker, message = self._inbox.get(timeout=wait_s) if wait_s > 0 else self._inbox.get_nowait()
            except queue.Empty:
                break
            self._handle(worker, message)
            wait_s = 0  # then only what has already come
        if progress is not None:
            held, self._held = self._held, []
            for name, *args in held:
                getattr(progress, name)(*args)

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready = True
        elif kind == "file":
            worker.current = (message[1], message[2])
        elif kind == "result":
            _kind, task, outcomes = message
            self._results[task] = outcomes
            worker.tasks.remove(task)
            worker.current = None
        elif kind == "died":
            for task in worker.tasks:
                self._results[task] = None
            worker.tasks.clear()
            worker.process.join(CLOSE_GRACE_S)
            if worker in self._pool:
                self._pool.remove(worker)
                if not worker.ready:  # it could not even start: starting another would fail the same way
                    log.warning("an ingest worker process stopped before it started (exit code %s); planning "
                                "files in the ingest process (ingest.workers: 0)", worker.process.exitcode)
                    self.close()
        else:
            self._held.append(message)
