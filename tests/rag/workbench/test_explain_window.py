"""Explain a miss past Milvus' result window: a knowledge base of more than 16384 chunks (synthetic vectors).

Encoding 17k chunks with the tiny model would take minutes; the rows are random vectors of its dimension and
vocabulary (rag.testing.synthetic_kb), written straight to milvus-lite, and the query is a real encoded text.
Searched exactly in process (the default within ``exact_max_chunks``), every rank is exact at any depth; searched by
Milvus (``exact_max_chunks: 0``, as over the budget or on a server), a chunk past the window gets exact bounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.config import MILVUS_MAX_LIMIT, RetrievalSettings, Settings
from rag.encoder import Encoder
from rag.retrieval import HybridRetriever
from rag.retrieval.scores import dense_scores, lexical_score
from rag.store import ChunkRecord, KnowledgeBase, MilvusStore, ModelInfo
from rag.testing.synthetic_kb import INSERT_BATCH, synthetic_rows
from rag.workbench.explain import explain
from rag.workbench.fixes import head_rows

KB = "window"
QUERY = "How does the sync engine resolve conflicts?"
CHUNKS = MILVUS_MAX_LIMIT + 616  # 17000: the dense list is cut at 16384


@pytest.fixture(scope="module")
def window(encoder: Encoder, make_settings: Callable[..., Settings],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HybridRetriever, list[ChunkRecord]]]:
    settings = make_settings(Path(tmp_path_factory.mktemp("window-kb")))
    rows = synthetic_rows(0, CHUNKS, encoder.dim, len(encoder.tokenizer), np.random.default_rng(7))
    with MilvusStore(settings.milvus) as store:
        kb = store.open(KB, ModelInfo.of(encoder), create=True)
        for start in range(0, CHUNKS, INSERT_BATCH):
            kb.upsert(rows[start:start + INSERT_BATCH])
        kb.flush()
        yield HybridRetriever.from_store(encoder, store, KB, RetrievalSettings()), rows


@pytest.fixture(scope="module")
def milvus_window(window: tuple[HybridRetriever, list[ChunkRecord]]) -> HybridRetriever:
    """The same knowledge base searched by Milvus, not in process."""
    exact = window[0]
    return exact.model_copy(update={"settings": RetrievalSettings(exact_max_chunks=0)})


def brute_force_rank(scores: dict[str, float], chunk_id: str) -> int:
    """1 + the number of chunks scoring strictly higher."""
    return 1 + sum(1 for other, value in scores.items() if value > scores[chunk_id] and other != chunk_id)


def places(scores: dict[str, float], listed: Callable[[float], bool]) -> dict[str, int]:
    """1-based places in the exact search's order (best first, ties by id) of the chunks ``listed`` keeps."""
    order = sorted((chunk_id for chunk_id, value in scores.items() if listed(value)),
                   key=lambda chunk_id: (-scores[chunk_id], chunk_id))
    return {chunk_id: place for place, chunk_id in enumerate(order, start=1)}


@pytest.fixture(scope="module")
def final_order(encoder: Encoder, window: tuple[HybridRetriever, list[ChunkRecord]]) -> list[str]:
    """Every chunk in the order of the default hybrid score (dense 1.0, sparse 0.3), by brute force."""
    rows = window[1]
    q = encoder.encode([QUERY])
    dense = dense_scores(q.dense[0], np.asarray([r.dense for r in rows], np.float32))
    sparse = [lexical_score(q.sparse[0], r.sparse) for r in rows]
    hybrid = [(d + 0.3 * s) / 1.3 for d, s in zip(dense.tolist(), sparse, strict=True)]
    return [rows[i].id for i in sorted(range(len(rows)), key=lambda i: (-hybrid[i], -dense[i], rows[i].id))]


def test_searched_exactly_a_chunk_past_the_window_gets_exact_ranks(
    encoder: Encoder, window: tuple[HybridRetriever, list[ChunkRecord]], final_order: list[str]
) -> None:
    rows = window[1]
    q = encoder.encode([QUERY])
    dense = dict(zip((r.id for r in rows), dense_scores(q.dense[0], np.asarray([r.dense for r in rows],
                                                                               np.float32)).tolist(), strict=True))
    sparse = {r.id: lexical_score(q.sparse[0], r.sparse) for r in rows}
    dense_places, sparse_places = places(dense, lambda _: True), places(sparse, lambda value: value > 0)
    rrf = {chunk_id: 1 / (60 + dense_places[chunk_id])
           + (1 / (60 + sparse_places[chunk_id]) if chunk_id in sparse_places else 0.0) for chunk_id in dense}
    deepest_dense = max(dense, key=lambda chunk_id: dense_places[chunk_id])
    for chunk_id in (final_order[-1], final_order[MILVUS_MAX_LIMIT + 100], deepest_dense):
        result = explain(window[0], QUERY, chunk_id)
        assert result.lost_at == "candidates" and "below rank" not in result.reason
        assert (result.dense.exact, result.dense.rank) == (True, brute_force_rank(dense, chunk_id))
        assert (result.sparse.exact, result.sparse.rank) == (True, brute_force_rank(sparse, chunk_id))
        assert result.final_rank.exact and result.final_rank.rank == final_order.index(chunk_id) + 1
        assert result.hybrid_rank.exact and result.hybrid_rank.rank == final_order.index(chunk_id) + 1
        assert result.rrf_rank.exact and result.rrf_rank.rank == brute_force_rank(rrf, chunk_id)
    assert explain(window[0], QUERY, deepest_dense).dense.rank > MILVUS_MAX_LIMIT

    # Only the lists' heads are read from Milvus; a chunk's places in the lists still come out exact, and with
    # them the candidate_factor that makes it a candidate.
    top_k = window[0].settings.top_k
    for place in (1_000, 9_000):
        chunk_id = next(c for c, p in dense_places.items() if p == place)
        result = explain(window[0], QUERY, chunk_id)
        assert (result.dense.position, result.sparse.position) == (place, sparse_places.get(chunk_id))
        best = min(p for p in (place, sparse_places.get(chunk_id)) if p)
        (fix,) = result.fixes
        assert fix.setting == "candidate_factor"
        assert fix.value == (math.ceil(best / top_k) if math.ceil(best / top_k) <= 100 else None)


def test_searched_by_milvus_a_chunk_past_the_window_gets_exact_bounds_said_as_such(
    milvus_window: HybridRetriever, final_order: list[str]
) -> None:
    last = final_order[-1]
    result = explain(milvus_window, QUERY, last)
    assert result.lost_at == "candidates"
    assert (result.dense.exact, result.dense.describe()) == (False, f"below rank {MILVUS_MAX_LIMIT}")
    assert f"below rank {MILVUS_MAX_LIMIT}" in result.reason
    for rank in (result.hybrid_rank, result.rrf_rank, result.final_rank):
        assert rank is not None and not rank.exact and rank.describe() == f"below rank {rank.rank}"
    # An exact bound: at least that many chunks do score higher, and it says more than the dense window alone.
    assert MILVUS_MAX_LIMIT <= result.final_rank.rank < CHUNKS
    assert result.final_rank.rank <= final_order.index(last)
    (fix,) = result.fixes
    assert fix.setting == "candidate_factor" and not fix.works


def test_chunks_the_window_holds_keep_exact_fused_ranks(
    window: tuple[HybridRetriever, list[ChunkRecord]], final_order: list[str]
) -> None:
    for place in (0, 3, 40):
        result = explain(window[0], QUERY, final_order[place])
        assert result.final_rank.exact and result.final_rank.rank == place + 1
        assert result.hybrid_rank.exact and result.hybrid_rank.rank == place + 1
        assert result.dense.exact


def test_searched_exactly_explain_reads_only_the_heads_of_the_lists(
    window: tuple[HybridRetriever, list[ChunkRecord]], milvus_window: HybridRetriever, final_order: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows with vectors are costly to read (16384 per list took most of two seconds at 100k chunks): in process,
    explain reads the candidates and what the top_k fix tries, no more; by Milvus, its whole windows."""
    limits: list[int] = []
    original = KnowledgeBase.search

    def counted(self: KnowledgeBase, field_name: str, vector: Any, limit: int, *args: Any, **kwargs: Any) -> Any:
        limits.append(limit)
        return original(self, field_name, vector, limit, *args, **kwargs)

    monkeypatch.setattr(KnowledgeBase, "search", counted)
    settings = window[0].settings
    explain(window[0], QUERY, final_order[30])
    assert max(limits) == head_rows(settings.candidate_limit, settings.candidate_factor) < MILVUS_MAX_LIMIT
    limits.clear()
    explain(milvus_window, QUERY, final_order[30])
    assert max(limits) == MILVUS_MAX_LIMIT
