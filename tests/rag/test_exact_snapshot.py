"""Exact index snapshots: a new process loads the index from disk instead of reading Milvus, and never a stale one."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pymilvus import MilvusClient

from rag.config import MilvusSettings
from rag.store import KnowledgeBase, MilvusStore
from rag.store.exact_search import unload
from rag.store.exact_snapshot import header, snapshot_path
from tests.rag.test_exact_search import EXACT, MODEL, assert_equals_brute_force, query, records


def as_a_new_process(uri: str, name: str = "kb") -> None:
    """Forget what this process knows of the collection's exact index, as a process started now would."""
    unload(uri, name)


def assert_a_new_process_searches_exactly(uri: str, *, read_from_milvus: bool) -> None:
    """A process started now searches as a brute force over what Milvus holds, its index read from Milvus (a
    stale snapshot) or loaded from the snapshot."""
    as_a_new_process(uri)
    with MilvusStore(MilvusSettings(uri=uri)) as store:
        kb = store.open("kb", MODEL)
        assert_equals_brute_force(kb)
        assert kb.exact is not None
        assert (kb.exact.builds, kb.exact.loads) == ((1, 0) if read_from_milvus else (0, 1))


def search_ids(kb: KnowledgeBase, seed: int = 1) -> list[str]:
    dense, _ = query(seed)
    return [h["id"] for h in kb.search("dense", dense, 10, "", ["id"], exact_max_chunks=EXACT)]


@pytest.fixture
def uri(tmp_path: Path) -> str:
    """A knowledge base ``kb`` of 300 chunks, searched once: its snapshot is written."""
    location = str(tmp_path / "exact.db")
    with MilvusStore(MilvusSettings(uri=location)) as store:
        kb = store.open("kb", MODEL, create=True)
        kb.upsert(records(0, 300, seed=8))
        search_ids(kb)
        assert kb.exact is not None and (kb.exact.builds, kb.exact.loads) == (1, 0)
    assert header(snapshot_path(location, "kb"))["rows"] == 300
    return location


def test_a_new_process_loads_the_index_from_the_snapshot(uri: str) -> None:
    root = str(Path(__file__).resolve().parents[2])
    script = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{root!r}]
        from rag.config import MilvusSettings
        from rag.store import MilvusStore
        from tests.rag.test_exact_snapshot import search_ids
        from tests.rag.test_exact_search import MODEL
        with MilvusStore(MilvusSettings(uri={uri!r})) as store:
            kb = store.open("kb", MODEL)
            ids = search_ids(kb)
            print(json.dumps({{"ids": ids, "builds": kb.exact.builds, "loads": kb.exact.loads}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], check=True, timeout=300, cwd=root, capture_output=True,
                          text=True)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert (seen["builds"], seen["loads"]) == (0, 1)
    with MilvusStore(MilvusSettings(uri=uri)) as store:
        kb = store.open("kb", MODEL)
        assert seen["ids"] == search_ids(kb)
        assert_equals_brute_force(kb)


@pytest.mark.parametrize("write", ["upsert", "delete"])
def test_a_write_after_the_snapshot_makes_it_stale(uri: str, write: str) -> None:
    with MilvusStore(MilvusSettings(uri=uri)) as store:
        kb = store.open("kb", MODEL)
        search_ids(kb)  # the snapshot's index, in this process: the write below patches it
        if write == "upsert":
            kb.upsert(records(290, 30, seed=9))  # 10 replaced, 20 new
        else:
            kb.delete_documents(["other/doc3.txt"])
    assert_a_new_process_searches_exactly(uri, read_from_milvus=True)
    assert header(snapshot_path(uri, "kb"))["rows"] == (320 if write == "upsert" else 290)  # written again


def test_a_write_right_after_a_snapshot_is_written_makes_it_stale(uri: str) -> None:
    as_a_new_process(uri)
    with MilvusStore(MilvusSettings(uri=uri)) as store:
        kb = store.open("kb", MODEL)
        kb.upsert(records(0, 10, seed=98))  # this hold's first write: a new stamp, the snapshot no longer matches
        search_ids(kb)  # read from Milvus, and a new snapshot written
        assert kb.exact is not None and kb.exact.builds == 1
        kb.upsert(records(10, 10, seed=99))  # new vectors for 10 chunks: the same row count
    assert_a_new_process_searches_exactly(uri, read_from_milvus=True)


def test_a_raw_pymilvus_insert_makes_it_stale(uri: str) -> None:
    client = MilvusClient(uri=uri)
    client.insert("kb", [r.to_row() for r in records(700, 5, seed=11)])  # records no stamp
    client.close()
    assert_a_new_process_searches_exactly(uri, read_from_milvus=True)


def test_an_unchanged_collection_loads_it_again_and_again(uri: str) -> None:
    for _ in range(2):
        assert_a_new_process_searches_exactly(uri, read_from_milvus=False)


def test_a_damaged_snapshot_is_read_from_milvus_with_a_warning_and_replaced(
    uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = snapshot_path(uri, "kb")
    path.write_bytes(path.read_bytes()[:1000])
    as_a_new_process(uri)
    with caplog.at_level(logging.WARNING, logger="rag.store.exact_search"), \
            MilvusStore(MilvusSettings(uri=uri)) as store:
        kb = store.open("kb", MODEL)
        assert_equals_brute_force(kb)
        assert kb.exact is not None and (kb.exact.builds, kb.exact.loads) == (1, 0)
    assert "could not be read" in caplog.text and str(path) in caplog.text
    assert header(path)["rows"] == 300


def test_a_large_collection_read_in_the_background_is_loaded_at_once_next_time(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rag.store.exact_search.FOREGROUND_CHUNKS", 100)
    snapshot_path(uri, "kb").unlink()
    as_a_new_process(uri)
    with MilvusStore(MilvusSettings(uri=uri)) as store:
        kb = store.open("kb", MODEL)
        search_ids(kb)  # Milvus' search answers; the index is read in the background, then its snapshot written
        assert kb.exact is not None and kb.exact.ready(timeout=120) and kb.exact.builds == 1
    as_a_new_process(uri)
    with MilvusStore(MilvusSettings(uri=uri)) as store:
        kb = store.open("kb", MODEL)
        assert kb.exact is not None
        with kb.exact.lock:
            assert kb.exact.current(kb, MODEL.dim, EXACT) is not None  # the first search is exact
        assert (kb.exact.builds, kb.exact.loads) == (0, 1)
        assert_equals_brute_force(kb)


def test_dropping_the_knowledge_base_deletes_its_snapshot(uri: str) -> None:
    with MilvusStore(MilvusSettings(uri=uri)) as store:
        store.drop("kb")
    assert not snapshot_path(uri, "kb").exists()
