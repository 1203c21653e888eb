"""The in-process exact search of embedded knowledge bases: its top k is the brute-force ranking of what Milvus
holds, after every kind of write, by this process, another client or another process; filters as Milvus'."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.config import MilvusSettings
from rag.retrieval.filters import SearchFilters
from rag.retrieval.scores import dense_scores, lexical_score
from rag.store import ChunkRecord, KnowledgeBase, MilvusStore, ModelInfo
from rag.store.schema import decode_sparse

DIM, VOCAB = 16, 300
MODEL = ModelInfo("random", "random-16", DIM)
EXACT = 100_000  # exact_max_chunks that every test collection fits in


def records(start: int, n: int, seed: int, *, docs: int = 10) -> list[ChunkRecord]:
    """Chunks ``start`` .. ``start + n - 1``: random normalised dense vectors, 1-12 random tokens each."""
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((n, DIM)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    out = []
    for i in range(n):
        number = start + i
        doc = f"dir_{number % docs}/doc%{number % docs}.md" if number % 3 else f"other/doc{number % docs}.txt"
        tokens = rng.choice(VOCAB, size=int(rng.integers(1, 13)), replace=False)
        out.append(ChunkRecord(
            id=f"c{number:05d}", doc_id=doc, source=doc, chunk_index=number, text=f"chunk {number}", title="",
            metadata={"page": number % 4, "kind": ["a", "b"][number % 2], "flag": number % 5 == 0,
                      **({"score": 0.5} if number % 7 == 0 else {})},
            dense=dense[i].tolist(), sparse={int(t): float(rng.random()) for t in tokens},
        ))
    return out


def query(seed: int) -> tuple[list[float], dict[int, float]]:
    rng = np.random.default_rng(10_000 + seed)
    dense = rng.standard_normal(DIM)
    tokens = rng.choice(VOCAB, size=6, replace=False)
    return (dense / np.linalg.norm(dense)).tolist(), {int(t): float(rng.random()) for t in tokens}


def milvus_keeps(kb: KnowledgeBase, flt: SearchFilters) -> set[str]:
    """The chunks Milvus' expression of each condition keeps, all conditions holding. (Not the whole expression:
    milvus-lite 3.2.2 answers nothing for ``source like ... and metadata[...] == ...``.)"""
    parts = [SearchFilters(source=flt.source), SearchFilters(source_prefix=flt.source_prefix),
             *(SearchFilters(metadata={key: value}) for key, value in flt.metadata.items())]
    kept = [{r["id"] for r in kb.rows(part.expression(), ["id"])} for part in parts if part.expression()]
    return set.intersection(*kept)


def brute_force(kb: KnowledgeBase, field: str, vector: Any, limit: int,
                flt: SearchFilters | None = None) -> list[str]:
    """The exact ranking of every chunk Milvus holds (those Milvus' filter keeps), ties by id."""
    rows = kb.rows("", ["id", "dense", "sparse"])
    if flt is not None:
        kept = milvus_keeps(kb, flt)
        rows = [r for r in rows if r["id"] in kept]
    if field == "dense":
        scores = dense_scores(np.asarray(vector), np.asarray([r["dense"] for r in rows], np.float32)).tolist()
    else:
        scores = [lexical_score(vector, decode_sparse(r["sparse"])) for r in rows]
    ranked = sorted((-s, r["id"]) for s, r in zip(scores, rows, strict=True) if field == "dense" or s > 0)
    return [chunk_id for _, chunk_id in ranked[:limit]]


def exact(kb: KnowledgeBase, field: str, vector: Any, limit: int, flt: SearchFilters | None = None) -> list[str]:
    return [h["id"] for h in kb.search(field, vector, limit, flt or "", ["id"], exact_max_chunks=EXACT)]


def assert_equals_brute_force(kb: KnowledgeBase, queries: int = 6, limit: int = 25) -> None:
    for seed in range(queries):
        dense, sparse = query(seed)
        assert exact(kb, "dense", dense, limit) == brute_force(kb, "dense", dense, limit)
        assert exact(kb, "sparse", sparse, limit) == brute_force(kb, "sparse", sparse, limit)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with MilvusStore(MilvusSettings(uri=str(tmp_path / "exact.db"))) as opened:
        yield opened


def test_top_k_equals_brute_force_on_random_data(store: MilvusStore) -> None:
    kb = store.open("kb", MODEL, create=True)
    kb.upsert(records(0, 800, seed=1))
    assert_equals_brute_force(kb, queries=20)
    dense, _ = query(0)
    whole = exact(kb, "dense", dense, 5000)
    assert len(whole) == 800 and whole == brute_force(kb, "dense", dense, 5000)
    rows = kb.search("dense", dense, 3, "", ["source", "chunk_index", "text"], exact_max_chunks=EXACT)
    assert [sorted(r) for r in rows] == [["chunk_index", "id", "source", "text"]] * 3
    assert rows[0]["text"] == f"chunk {rows[0]['chunk_index']}"
    assert kb.exact is not None and kb.exact.builds == 1  # read from Milvus once


def test_inserts_updates_and_deletes_alternating_with_searches(store: MilvusStore) -> None:
    kb = store.open("kb", MODEL, create=True)
    kb.upsert(records(0, 300, seed=2))
    assert_equals_brute_force(kb)
    kb.upsert(records(300, 150, seed=3))  # inserts
    assert_equals_brute_force(kb)
    kb.upsert(records(0, 120, seed=4))  # updates: the same ids with new vectors
    assert_equals_brute_force(kb)
    kb.delete_ids([f"c{i:05d}" for i in range(100, 260, 2)])
    assert_equals_brute_force(kb)
    kb.delete_documents(["dir_1/doc%1.md", "other/doc3.txt"])
    assert_equals_brute_force(kb)
    kb.delete_ids([f"c{i:05d}" for i in range(0, 450)])  # everything: no hits at all
    assert exact(kb, "dense", query(0)[0], 10) == []
    kb.upsert(records(1000, 40, seed=5))
    assert_equals_brute_force(kb)
    assert kb.exact is not None and kb.exact.builds == 1  # patched in place, never read again


def test_writes_by_another_client_of_this_process(store: MilvusStore, tmp_path: Path) -> None:
    kb = store.open("kb", MODEL, create=True)
    kb.upsert(records(0, 300, seed=6))
    assert_equals_brute_force(kb)
    with MilvusStore(MilvusSettings(uri=str(tmp_path / "exact.db"))) as other:
        writer = other.open("kb", MODEL)
        writer.upsert(records(250, 100, seed=7))
        writer.delete_documents(["dir_2/doc%2.md"])
        assert_equals_brute_force(kb)
    assert kb.exact is not None and kb.exact.builds == 1


WRITER = """
import sys
import numpy as np
sys.path[:0] = [{root!r}]
from rag.config import MilvusSettings
from rag.store import MilvusStore, ModelInfo
from tests.rag.test_exact_search import MODEL, records
with MilvusStore(MilvusSettings(uri={uri!r})) as store:
    kb = store.open("kb", MODEL)
    kb.upsert(records(500, 60, seed=9) + records(0, 30, seed=10))
    kb.delete_documents(["dir_4/doc%4.md"])
"""

RAW_WRITER = """
import sys
sys.path[:0] = [{root!r}]
from pymilvus import MilvusClient
from tests.rag.test_exact_search import records
client = MilvusClient(uri={uri!r})
client.insert("kb", [r.to_row() for r in records(700, 5, seed=11)])
client.close()
"""


@pytest.mark.parametrize("writer", [WRITER, RAW_WRITER], ids=["rag-store", "raw-pymilvus-no-stamp"])
def test_writes_by_another_process_are_seen(tmp_path: Path, writer: str) -> None:
    uri = str(tmp_path / "exact.db")
    with MilvusStore(MilvusSettings(uri=uri)) as store:
        kb = store.open("kb", MODEL, create=True)
        kb.upsert(records(0, 300, seed=8))
        assert_equals_brute_force(kb)
        before = len(kb.rows("", ["id"]))
    root = str(Path(__file__).resolve().parents[2])
    script = textwrap.dedent(writer).format(root=root, uri=uri)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300, cwd=root)
    with MilvusStore(MilvusSettings(uri=uri)) as store:
        kb = store.open("kb", MODEL)
        assert len(kb.rows("", ["id"])) != before
        assert_equals_brute_force(kb)
        assert kb.exact is not None and kb.exact.builds == 2  # read again after the other process wrote


FILTERS = [
    SearchFilters(source="other/doc3.txt"),
    SearchFilters(source_prefix="dir_1/"),
    SearchFilters(source_prefix="dir_1/doc%"),  # % and _ are literal
    SearchFilters(source_prefix="dir__"),
    SearchFilters(metadata={"page": 2}),
    SearchFilters(metadata={"page": 2.0}),
    SearchFilters(metadata={"kind": "b", "flag": True}),
    SearchFilters(metadata={"flag": False}),
    SearchFilters(metadata={"score": 0.5}),
    SearchFilters(metadata={"missing": "x"}),
    SearchFilters(source_prefix="dir_", metadata={"page": 1, "kind": "b"}),
]


@pytest.mark.parametrize("flt", FILTERS, ids=[f.expression() for f in FILTERS])
def test_filters_keep_what_milvus_keeps(store: MilvusStore, flt: SearchFilters) -> None:
    kb = store.open("kb", MODEL, create=True)
    kb.upsert(records(0, 400, seed=12))
    kept = sorted(milvus_keeps(kb, flt))
    dense, sparse = query(1)
    assert sorted(exact(kb, "dense", dense, 1000, flt)) == kept  # every kept chunk, no other
    assert exact(kb, "dense", dense, 7, flt) == brute_force(kb, "dense", dense, 7, flt)
    assert exact(kb, "sparse", sparse, 7, flt) == brute_force(kb, "sparse", sparse, 7, flt)


def test_over_the_budget_milvus_searches(store: MilvusStore) -> None:
    kb = store.open("kb", MODEL, create=True)
    kb.upsert(records(0, 300, seed=13))
    dense, _ = query(2)
    milvus = kb.search("dense", dense, 10, "", ["id"], params={"ef": 512}, exact_max_chunks=0)
    over = kb.search("dense", dense, 10, "", ["id"], params={"ef": 512}, exact_max_chunks=299)
    assert over == milvus and kb.exact is not None and kb.exact.index is None and kb.exact.builds == 0
    assert [h["id"] for h in kb.search("dense", dense, 10, "", ["id"], exact_max_chunks=300)] == \
        brute_force(kb, "dense", dense, 10)
    kb.upsert(records(300, 5, seed=14))  # now over the budget: the index is let go
    assert kb.search("dense", dense, 10, "", ["id"], params={"ef": 512}, exact_max_chunks=300) == \
        kb.search("dense", dense, 10, "", ["id"], params={"ef": 512}, exact_max_chunks=0)
    assert kb.exact.index is None


def test_every_chunks_exact_scores_after_deletes_with_a_filter(store: MilvusStore) -> None:
    """What explain's ranks at any depth use: every live chunk's dense and sparse score, and which the filter keeps."""
    kb = store.open("kb", MODEL, create=True)
    kb.upsert(records(0, 400, seed=18))
    kb.delete_ids([f"c{i:05d}" for i in range(0, 400, 7)])
    kb.upsert(records(0, 30, seed=19))  # updates: new vectors under the same ids
    dense, sparse = query(5)
    flt = SearchFilters(source_prefix="dir_", metadata={"kind": "a"})
    found = kb.exact_scores(dense, sparse, flt, exact_max_chunks=EXACT)
    assert found is not None
    rows = {r["id"]: r for r in kb.rows("", ["id", "dense", "sparse"])}
    assert sorted(found.ids) == sorted(rows)
    assert found.dense.tolist() == pytest.approx(
        dense_scores(np.asarray(dense), np.asarray([rows[i]["dense"] for i in found.ids], np.float32)).tolist(),
        abs=1e-12)
    assert found.sparse.tolist() == pytest.approx(
        [lexical_score(sparse, decode_sparse(rows[i]["sparse"])) for i in found.ids], abs=1e-12)
    assert {i for i, kept in zip(found.ids, found.kept.tolist(), strict=True) if kept} == milvus_keeps(kb, flt)
    assert kb.exact_scores(dense, sparse, flt, exact_max_chunks=len(rows) - 1) is None  # over the budget
    assert kb.exact_scores(dense, sparse, flt.expression(), exact_max_chunks=EXACT) is None  # an expression only


def test_a_server_uses_milvus_search_with_the_search_params(milvus_server: str) -> None:
    with MilvusStore(MilvusSettings(uri=milvus_server)) as store:
        if store.exists("exact_server"):
            store.drop("exact_server")
        kb = store.open("exact_server", MODEL, create=True)
        kb.upsert(records(0, 200, seed=15))
        kb.flush()
        assert not kb.embedded
        dense, _ = query(3)
        hits = kb.search("dense", dense, 40, "", ["id"], params={"ef": 4}, exact_max_chunks=EXACT)  # ef raised to 40
        assert len(hits) == 40 and kb.exact is not None and kb.exact.index is None
        assert kb.exact_scores(dense, {}, exact_max_chunks=EXACT) is None  # no in-process scores on a server
        store.drop("exact_server")


def test_a_large_collection_is_read_in_the_background(store: MilvusStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rag.store.exact_search.FOREGROUND_CHUNKS", 100)
    kb = store.open("kb", MODEL, create=True)
    kb.upsert(records(0, 300, seed=16))
    dense, _ = query(4)
    first = kb.search("dense", dense, 10, "", ["id"], params={"ef": 512}, exact_max_chunks=EXACT)
    assert first == kb.search("dense", dense, 10, "", ["id"], params={"ef": 512}, exact_max_chunks=0)  # Milvus'
    assert kb.exact is not None and kb.exact.ready(timeout=120)
    kb.upsert(records(300, 20, seed=17))  # patched: the index stays
    assert kb.exact.index is not None
    assert_equals_brute_force(kb)
    assert kb.exact.builds == 1
