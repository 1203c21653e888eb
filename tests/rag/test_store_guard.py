"""A Milvus server that stops mid-work: every store operation and the retriever raise StoreUnavailableError naming
the server and what to start; `rag-ingest` exits 2 with that message, and its rerun completes the ingest."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rag.config import Settings
from rag.encoder import Encoder
from rag.errors import StoreUnavailableError
from rag.retrieval import HybridRetriever
from rag.store import ChunkRecord, MilvusStore, ModelInfo
from tests.conftest import cli_env
from tests.support.milvus_server import MilvusServer, assert_names_the_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MilvusServer]:
    milvus = MilvusServer(tmp_path / "server.db").start()
    yield milvus
    milvus.stop()


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
    loading = run.stdout.readline()  # once the first file needs encoding (rag.encoder.deferred)
    first = run.stdout.readline()  # then one line per written file when not on a terminal
    server.stop()
    out, err = run.communicate(timeout=600)
    assert loading.startswith("Loading embedding model") and first.startswith("added"), loading + first + out + err
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
