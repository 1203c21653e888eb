"""A synthetic knowledge base for tests and benchmarks that need many chunks quickly.

Random normalised dense vectors of the model's dimension and random sparse weight dicts over its vocabulary,
written straight to a Milvus collection (no encoding): 100k chunks take seconds instead of hours.
"""

from __future__ import annotations

import time

import numpy as np

from rag.store import ChunkRecord, MilvusStore, ModelInfo

INSERT_BATCH = 10000
SPARSE_TOKENS = 48  # non-zero weights per synthetic chunk, about a 100-token chunk's worth


def synthetic_rows(start: int, n: int, dim: int, vocab: int, rng: np.random.Generator) -> list[ChunkRecord]:
    """Chunks ``start`` .. ``start + n - 1`` (ids ``c00000000``, 20 chunks per document)."""
    dense = rng.standard_normal((n, dim)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    ids = rng.integers(5, vocab, size=(n, SPARSE_TOKENS))
    weights = rng.random((n, SPARSE_TOKENS)).astype(np.float32) * 0.4
    rows = []
    for i in range(n):
        number = start + i
        source = f"synthetic/doc{number // 20:05d}.md"
        rows.append(ChunkRecord(
            id=f"c{number:08d}", doc_id=source, source=source, chunk_index=number % 20,
            text=f"synthetic chunk {number}", title="synthetic", metadata={"file_type": "md"},
            dense=dense[i].tolist(), sparse={int(t): float(w) for t, w in zip(ids[i], weights[i], strict=True)},
        ))
    return rows


def build_collection(store: MilvusStore, name: str, size: int, model: ModelInfo, vocab: int) -> float:
    """Create collection ``name`` with ``size`` synthetic chunks (seeded by ``size``); returns the seconds it took."""
    started = time.perf_counter()
    if store.exists(name):
        store.drop(name)
    kb = store.open(name, model, create=True)
    rng = np.random.default_rng(size)
    for start in range(0, size, INSERT_BATCH):
        kb.upsert(synthetic_rows(start, min(INSERT_BATCH, size - start), model.dim, vocab, rng))
    kb.flush()
    return time.perf_counter() - started
