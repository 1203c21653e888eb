"""A Milvus server that stops mid-work: every store operation and the retriever raise StoreUnavailableError naming
the server and what to start; `rag-ingest` exits 2 with that message, and its rerun completes the ingest."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rag.config import Settings
from rag.encoder import Encoder
from rag.errors import StoreUnavailableError
from rag.retrieval import HybridRetriever
from rag.store import ChunkRecord, MilvusStore, ModelInfo
from tests.conftest import cli_env
from tests.support.ollama_server import free_port

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
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.2)
        raise RuntimeError("milvus-lite server did not start within 60 s")

    def stop(self) -> None:
        """Kill it, as a crash or `docker stop` would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MilvusServer]:
    milvus = MilvusServer(tmp_path / "server.db").start()
    yield milvus
    milvus.stop()


def assert_names_the_server(message: str, server: MilvusServer) -> None:
    assert f"Milvus server at {server.uri} is not reachable" in message
    assert "docker compose up -d milvus" in message
    assert f"milvus-lite server --data-dir ./data/milvus.db --host 127.0.0.1 --port {server.port}" in message


def record(encoder: Encoder, doc_id: str, text: str) -> ChunkRecord:
    vectors = encoder.encode([text])
    return ChunkRecord(id=f"{doc_id}#0", doc_id=doc_id, source=doc_id, chunk_index=0, text=text, title="",
                       dense=vectors.dense[0].tolist(), sparse=vectors.sparse[0], metadata={"chunk_count": 1})


def test_item10_every_store_operation_and_the_retriever_name_the_stopped_server(
    make_settings: Callable[..., Settings], encoder: Encoder, server: MilvusServer, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, milvus={"uri": server.uri})
    store = MilvusStore(settings.milvus)
    kb = store.open("guarded", ModelInfo.of(encoder), create=True)
    kb.upsert([record(encoder, "a.txt", "Employees may work remotely three days per week.")])
    retriever = HybridRetriever.from_store(encoder, store, "guarded", settings.retrieval)
    assert retriever.search("remote work").documents

    server.stop()
    operations: dict[str, Callable[[], object]] = {
        "upsert": lambda: kb.upsert([record(encoder, "b.txt", "Annual leave is fifteen days.")]),
        "delete": lambda: kb.delete_documents(["a.txt"]),
        "query": kb.count,
        "list": store.knowledge_bases,
        "describe": lambda: store.open("guarded"),
        "scan": kb.documents,
        "search": lambda: retriever.search("remote work"),
    }
    for name, operation in operations.items():
        with pytest.raises(StoreUnavailableError) as caught:
            operation()
        assert_names_the_server(str(caught.value), server), name
    store.close()


def test_item10_rag_ingest_stops_with_a_message_when_the_server_stops_and_the_rerun_completes(
    make_settings: Callable[..., Settings], server: MilvusServer, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(40):
        (docs / f"note-{n:02d}.txt").write_text(f"Note {n}: remote work is allowed {n % 5 + 1} days a week. " * 20,
                                                encoding="utf-8")
    settings = make_settings(tmp_path, milvus={"uri": server.uri})
    env = {**cli_env(settings), "PYTHONUNBUFFERED": "1"}
    exe = Path(sys.executable).parent / "rag-ingest"
    run = subprocess.Popen([str(exe), str(docs), "--kb", "notes"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    assert run.stdout is not None
    first = run.stdout.readline()  # one line per written file when not on a terminal
    server.stop()
    out, err = run.communicate(timeout=600)
    assert first.startswith("added"), first + out + err
    assert run.returncode == 2, out + err
    assert "Traceback" not in out + err
    assert_names_the_server(" ".join(err.split()), server)

    server.start()  # same data dir, same port
    again = subprocess.run([str(exe), str(docs), "--kb", "notes"], env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    with MilvusStore(settings.milvus) as store:
        stored = store.open("notes").documents()
    assert sorted(d.source for d in stored.values()) == sorted(p.name for p in docs.iterdir())
    for doc in stored.values():
        assert sorted(doc.chunk_indexes) == list(range(doc.metadata[0]["chunk_count"])), doc.source
