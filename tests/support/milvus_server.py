"""A `milvus-lite server` on 127.0.0.1 that a test can stop (as a crash would) and start again on the same data
directory and port: the Milvus server of a compose stack going down mid-work."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.support.ollama_server import free_port
from tests.support.processes import listening

MILVUS_LITE = Path(sys.executable).parent / "milvus-lite"


class MilvusServer:
    """A `milvus-lite server` on 127.0.0.1 that a test can stop and start again (same data dir, same port)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir, self.port = data_dir, free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MilvusServer:
        self.proc = subprocess.Popen(
            [str(MILVUS_LITE), "server", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
             "--port", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            assert self.proc.poll() is None, "milvus-lite server exited"
            if listening(self.port):
                return self
            time.sleep(0.2)
        raise RuntimeError("milvus-lite server did not start within 60 s")

    def stop(self) -> None:
        """Kill it, as a crash or `docker stop` would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def assert_names_the_server(message: str, server: MilvusServer) -> None:
    """The StoreUnavailableError message: which server is down and how to start it."""
    assert f"Milvus server at {server.uri} is not reachable" in message
    assert "docker compose up -d milvus" in message
    assert f"milvus-lite server --data-dir ./data/milvus.db --host 127.0.0.1 --port {server.port}" in message
