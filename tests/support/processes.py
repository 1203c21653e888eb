"""A server started in its own process for a test or a benchmark: wait until it answers, stop it after."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def answers(url: str, body: bytes | None = None) -> bool:
    """Whether GET ``url`` answers 200 now (with ``body``, stripped, when given)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200 and (body is None or response.read().strip() == body)
    except OSError:
        return False


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port`` now."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    """Terminate ``proc``; kill it when it has not exited after ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextmanager
def serving(args: Sequence[str], *, ready: Callable[[], bool], what: str, log: Path | None = None,
            timeout_s: float = 120, **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``args`` (its output to ``log``, or nowhere), wait until ``ready()``, yield the process, then stop it.

    A process that exits first, or is not ready within ``timeout_s``, is a RuntimeError naming ``what`` with the
    log's text."""
    handle = log.open("w") if log is not None else None
    proc = subprocess.Popen(list(args), stdout=handle or subprocess.DEVNULL, stderr=subprocess.STDOUT, **popen)
    try:
        deadline = time.time() + timeout_s
        while not ready():
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}{_tail(log)}")
            if time.time() > deadline:
                raise RuntimeError(f"{what} did not answer within {timeout_s:g} s{_tail(log)}")
            time.sleep(0.3)
        yield proc
    finally:
        stop(proc)
        if handle is not None:
            handle.close()


def _tail(log: Path | None) -> str:
    return f": {log.read_text(errors='replace')}" if log is not None and log.exists() else ""
