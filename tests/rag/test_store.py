"""The Milvus store on embedded milvus-lite and on `milvus-lite server`: schema, model records, clear errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from ingest.bookkeeping import is_complete
from rag.config import MilvusSettings
from rag.errors import KnowledgeBaseNotFoundError, ModelMismatchError, StoreUnavailableError
from rag.retrieval.filters import SearchFilters
from rag.store import ChunkRecord, KnowledgeBase, MilvusStore, ModelInfo
from rag.store.embedded_engine import EmbeddedEngine
from rag.store.knowledge_base import in_filter, quote
from rag.store.schema import (
    EMPTY_SPARSE_TOKEN,
    MAX_PATH,
    PROP_DIM,
    PROP_FINGERPRINT,
    PROP_MODEL,
    PROP_SCHEMA,
    SCALAR_FIELDS,
    SCHEMA_VERSION,
    build_schema,
)
from tests.support.milvus_server import MilvusServer

MODEL = ModelInfo("tiny", "abc123", 4)


def _record(i: int, doc_id: str = "a.md") -> ChunkRecord:
    meta = {"content_hash": "h1", "pipeline": "p", "chunk_count": 3}
    chunk_id = hashlib.sha256(f"{doc_id}{i}".encode()).hexdigest()
    return ChunkRecord(chunk_id, doc_id, doc_id, i, f"text {i}", "Title", meta, [1.0, 0.0, 0.0, 0.0], {i + 1: 0.5})


def _roundtrip(store: MilvusStore) -> None:
    base = store.open("kb_one", MODEL, create=True)
    base.upsert([_record(i) for i in range(3)] + [_record(0, 'odd "name" \\ 文件.md')])
    assert base.count() == 4
    docs = base.documents()
    assert docs["a.md"].chunks == 3 and is_complete(docs["a.md"], "h1", "p")
    assert not is_complete(docs["a.md"], "h2", "p")
    assert docs["a.md"].metadata[0] == {"content_hash": "h1", "pipeline": "p", "chunk_count": 3}  # as written
    assert set(base.documents(['odd "name" \\ 文件.md'])) == {'odd "name" \\ 文件.md'}
    rows = base.chunks("a.md", vectors=True)
    assert [r["chunk_index"] for r in rows] == [0, 1, 2]
    assert rows[1]["sparse"] == {2: pytest.approx(0.5)}
    base.delete_documents(["a.md"])
    assert base.count() == 1
    assert store.knowledge_bases() == ["kb_one"]
    layout = base.layout()
    types = layout["fields"]
    assert types == {"id": "VARCHAR", "doc_id": "VARCHAR", "source": "VARCHAR", "chunk_index": "INT64",
                     "text": "VARCHAR", "title": "VARCHAR", "metadata": "JSON", "dense": "FLOAT_VECTOR",
                     "sparse": "SPARSE_FLOAT_VECTOR"}
    indexes = layout["indexes"]
    assert indexes["dense"]["metric_type"] == "IP"
    assert (indexes["sparse"]["index_type"], indexes["sparse"]["metric_type"]) == ("SPARSE_INVERTED_INDEX", "IP")
    store.drop("kb_one")
    assert store.knowledge_bases() == []


def test_embedded_roundtrip(tmp_path: Path) -> None:
    with MilvusStore(MilvusSettings(uri=str(tmp_path / "sub" / "m.db"))) as store:
        _roundtrip(store)


def test_server_roundtrip(milvus_server: str) -> None:
    with MilvusStore(MilvusSettings(uri=milvus_server)) as store:
        for name in store.knowledge_bases():
            store.drop(name)
        _roundtrip(store)


def test_reopen_after_restart_loads_collection(tmp_path: Path) -> None:
    uri = str(tmp_path / "m.db")
    with MilvusStore(MilvusSettings(uri=uri)) as store:
        store.open("kb", MODEL, create=True).upsert([_record(0)])
    with MilvusStore(MilvusSettings(uri=uri)) as store:
        assert store.open("kb", MODEL).count() == 1


def test_other_model_is_a_clear_error(tmp_path: Path) -> None:
    with MilvusStore(MilvusSettings(uri=str(tmp_path / "m.db"))) as store:
        store.open("kb", MODEL, create=True)
        with pytest.raises(ModelMismatchError) as info:
            store.open("kb", ModelInfo("other", "zzz", 8))
        msg = str(info.value)
        assert "4 dimensions" in msg and "8 dimensions" in msg and "rebuild" in msg
        with pytest.raises(ModelMismatchError, match="fingerprint"):
            store.open("kb", ModelInfo("tiny", "different-weights", 4))


def test_missing_kb_and_foreign_collection(tmp_path: Path) -> None:
    with MilvusStore(MilvusSettings(uri=str(tmp_path / "m.db"))) as store:
        with pytest.raises(KnowledgeBaseNotFoundError, match="rag-ingest PATH --kb"):
            store.open("nope")
        other_program = MilvusClient(str(tmp_path / "m.db"))  # a collection made by some other program
        other_program.create_collection("foreign", dimension=4)
        assert store.collections() == ["foreign"]
        with pytest.raises(ModelMismatchError, match="not created by this project"):
            store.open("foreign", MODEL)
        assert store.knowledge_bases() == []


def test_second_process_gets_the_lock_message(tmp_path: Path) -> None:
    uri = str(tmp_path / "locked.db")
    with MilvusStore(MilvusSettings(uri=uri)):
        code = textwrap.dedent(f"""
            from rag.config import MilvusSettings
            from rag.errors import StoreLockedError
            from rag.store import MilvusStore
            try:
                MilvusStore(MilvusSettings(uri={uri!r}))
            except StoreLockedError as exc:
                print(exc)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "is open in another process, e.g. the UI" in out.stdout
    assert "milvus-lite server" in out.stdout and "milvus.uri" in out.stdout


def test_same_process_shares_the_embedded_database(tmp_path: Path) -> None:
    uri = str(tmp_path / "shared.db")
    with MilvusStore(MilvusSettings(uri=uri)) as first:
        first.open("kb", MODEL, create=True).upsert([_record(0)])
        with MilvusStore(MilvusSettings(uri=uri)) as second:
            assert second.open("kb", MODEL).count() == 1


def test_unreachable_server_and_bad_uri(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match=r"not reachable.*milvus-lite server"):
        MilvusStore(MilvusSettings(uri="http://127.0.0.1:9"))
    with pytest.raises(StoreUnavailableError, match=r"ending in \.db"):
        MilvusStore(MilvusSettings(uri=str(tmp_path / "plain")))


def test_filter_quoting() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert in_filter("doc_id", ["x", "y"]) == 'doc_id in ["x", "y"]'


ODD_NAMES = ['quote " in it.md', "back\\slash\\.md", "new\nline.md", "carriage\rreturn.md", "中文 文件名.md",
             'all "of\\ them\n中.md', "tab\tand % _ like.md"]


def _vector(i: int) -> list[float]:
    return [1.0, 0.0, 0.0, 0.0] if i == 0 else [0.0, 1.0, 0.0, 0.0] if i == 1 else [0.6, 0.8, 0.0, 0.0]


def test_search_finds_best_first_and_filters_by_any_text(tmp_path: Path) -> None:
    with MilvusStore(MilvusSettings(uri=str(tmp_path / "m.db"))) as store:
        base = store.open("kb", MODEL, create=True)
        records = [ChunkRecord(f"id{n}{i}", name, name, i, f"{name} {i}", "T", {"file_type": "md"}, _vector(i),
                               {i + 1: 1.0}) for n, name in enumerate([*ODD_NAMES, "plain.md"]) for i in range(3)]
        base.upsert(records)

        dense = base.search("dense", [1.0, 0.0, 0.0, 0.0], 10, "", ["source", "chunk_index"])
        assert [row["chunk_index"] for row in dense] == [0] * 8 + [2] * 2  # inner products 1.0, then 0.6
        assert {"id", "source", "chunk_index"} == set(dense[0])
        sparse = base.search("sparse", {2: 1.0}, 100, "", ["chunk_index"])
        assert {row["chunk_index"] for row in sparse} == {1}  # only chunks holding token 2

        for name in ODD_NAMES:
            hits = base.search("dense", [0.0, 1.0, 0.0, 0.0], 10, SearchFilters(source=name).expression(),
                               ["source", "chunk_index"])
            assert [(h["source"], h["chunk_index"]) for h in hits] == [(name, 1), (name, 2), (name, 0)]
            assert set(base.documents([name])) == {name}
            assert set(base.documents(sources=[name])) == {name}
            assert [r["chunk_index"] for r in base.chunks(name)] == [0, 1, 2]
        prefix = base.search("dense", [1.0, 0.0, 0.0, 0.0], 50, SearchFilters(source_prefix="tab\t").expression(),
                             ["source"])
        assert {h["source"] for h in prefix} == {"tab\tand % _ like.md"}
        meta = base.search("dense", [1.0, 0.0, 0.0, 0.0], 50,
                           SearchFilters(metadata={"file_type": 'md"\\\n中'}).expression(), ["source"])
        assert meta == []

        base.delete_documents(ODD_NAMES)
        assert set(base.documents()) == {"plain.md"}
        assert len(base.rows("", ["id"])) == 3 and len(base.rows("", ["id"], limit=2)) == 2


def test_ping_says_whether_the_server_answers(tmp_path: Path) -> None:
    server = MilvusServer(tmp_path / "server.db").start()
    try:
        with MilvusStore(MilvusSettings(uri=server.uri)) as store:
            assert store.ping()
            server.stop()
            assert not store.ping()
    finally:
        server.stop()
    with MilvusStore(MilvusSettings(uri=str(tmp_path / "m.db"))) as store:
        assert store.ping()


def _all_rows(base: KnowledgeBase) -> list[dict[str, object]]:
    return sorted(base.rows("", [*SCALAR_FIELDS, "dense", "sparse"]), key=lambda r: str(r["id"]))


def _listing(base: KnowledgeBase) -> dict[str, list[tuple[str, int, str]]]:
    return {doc_id: sorted(zip(doc.chunk_ids, doc.chunk_indexes, map(json.dumps, doc.metadata), strict=True))
            for doc_id, doc in base.documents().items()}


def test_embedded_writes_go_to_milvus_lites_engine_and_store_what_a_server_stores(
    tmp_path: Path, milvus_server: str
) -> None:
    """Upserts, deletes and the listing of an embedded knowledge base skip pymilvus' conversion and the loopback gRPC
    (see rag.store.embedded_engine); what they write and read is what the same calls do on a Milvus server."""
    odd = {"键": "值", "nested": {"list": [1, 2.5, None]}, "content_hash": "h1"}
    records = [*(_record(i) for i in range(3)),
               ChunkRecord("z" * 64, "文件 \"x\".md", "文件 \"x\".md", 0, "tab\tnul\x00 中文", "T" * 2000, odd,
                           [0.1, -0.2, 0.3, 1e-8], {})]
    with MilvusStore(MilvusSettings(uri=str(tmp_path / "m.db"))) as embedded, \
            MilvusStore(MilvusSettings(uri=milvus_server)) as server:
        if server.exists("kb_engine"):
            server.drop("kb_engine")
        local, remote = embedded.open("kb_engine", MODEL, create=True), server.open("kb_engine", MODEL, create=True)
        assert isinstance(local.engine, EmbeddedEngine) and remote.engine is None
        for base in (local, remote):
            base.upsert(records)
            base.upsert([_record(1)])  # the same id again: replaced, not doubled
            base.delete_ids([_record(2).id])
        assert local.count() == remote.count() == 3
        assert _all_rows(local) == _all_rows(remote)
        assert _listing(local) == _listing(remote)  # every stored document, read from the engine and from a server
        by_id = {row["id"]: row for row in remote.index_rows()}  # what the exact index is built from
        assert {row["id"]: row for row in local.index_rows()} == by_id and len(by_id) == 3
        empty = [r["sparse"] for r in _all_rows(local) if r["id"] == "z" * 64]
        assert empty == [{EMPTY_SPARSE_TOKEN: pytest.approx(1e-30)}]
        with pytest.raises(MilvusException, match="max_length"):  # what the schema refuses is still refused
            local.upsert([_record(0, doc_id="d" * (MAX_PATH + 1))])
        assert local.count() == 3
        assert EmbeddedEngine.of(str(tmp_path / "other.db"), "kb_engine") is None  # no such database open here
        assert EmbeddedEngine.of(str(tmp_path / "m.db"), "no_such_kb") is None
        embedded.drop("kb_engine")
        with pytest.raises(MilvusException, match="does not exist"):  # a dropped collection is not written
            local.upsert([_record(0)])


def test_a_creation_cut_short_before_its_indexes_is_completed_on_open(tmp_path: Path) -> None:
    """Creating a knowledge base is two calls (the collection, then its indexes, not waited for); a process
    killed between them leaves a collection without indexes, which the next open indexes."""
    uri = str(tmp_path / "m.db")
    with MilvusStore(MilvusSettings(uri=uri)) as store:
        props = {PROP_MODEL: MODEL.name, PROP_FINGERPRINT: MODEL.fingerprint, PROP_DIM: str(MODEL.dim),
                 PROP_SCHEMA: SCHEMA_VERSION}
        MilvusClient(uri).create_collection("half", schema=build_schema(MODEL.dim), properties=props)
        base = store.open("half", MODEL, create=True)
        base.upsert([_record(i) for i in range(3)])
        assert base.layout()["indexes"]["sparse"]["index_type"] == "SPARSE_INVERTED_INDEX"
        hits = base.search("dense", [1.0, 0.0, 0.0, 0.0], 2, output_fields=["chunk_index"])
        assert len(hits) == 2
