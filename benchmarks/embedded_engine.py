"""Embedded milvus-lite through pymilvus' client against straight into its engine (rag.store.embedded_engine).

    python benchmarks/embedded_engine.py                      # 4,000 rows, 32-d (the tiny model's size)
    python benchmarks/embedded_engine.py --rows 10000 --dim 1024 --rounds 2

For each round, on fresh knowledge bases of one embedded database, the two paths take turns at what a
knowledge base sends the engine directly: upserting ``--rows`` chunks in the store's batches, listing every
stored document (a re-ingest's look-up), and reading every chunk with its vectors (the exact index's first
read). Prints each path's best time and the engine / client ratio per operation (median of the rounds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.config import MilvusSettings
from rag.store import ChunkRecord, MilvusStore, ModelInfo

OPERATIONS = ["upsert", "list documents", "read for the exact index"]


def records(rows: int, dim: int, seed: int) -> list[ChunkRecord]:
    """Chunks shaped like an ingest's: three per document, rag-ingest's metadata keys, ~80 sparse weights."""
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((rows, dim)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    out = []
    for i in range(rows):
        doc = f"part-{i % 20:02d}/doc-{i // 3:05d}.md"
        meta = {"content_hash": f"{i // 3:064x}", "file_hash": f"{i // 3:064x}", "file_docs": 1, "chunk_count": 3,
                "pipeline": "0123456789abcdef", "root": "/data/kb", "mtime": 1.7e9, "size": 4096, "heading": "Notes"}
        sparse = dict(zip(rng.integers(0, 250_000, 80).tolist(), rng.random(80).astype(np.float32).tolist(),
                          strict=True))
        out.append(ChunkRecord(f"{seed}-{i:012d}", doc, doc, i % 3, "text " * 80, "Title", meta, dense[i].tolist(),
                               sparse))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    seconds: dict[tuple[str, str], list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp, MilvusStore(MilvusSettings(uri=str(Path(tmp) / "m.db"))) as store:
        model = ModelInfo("bench", "bench", args.dim)
        for round_ in range(args.rounds):
            for path in ("client", "engine"):  # the paths take turns
                kb = store.open(f"bench_{round_}_{path}", model, create=True)
                if path == "client":
                    kb.engine = None  # everything through pymilvus, as before
                assert (kb.engine is None) == (path == "client")
                rows = records(args.rows, args.dim, round_)
                steps: list[tuple[str, Callable[[], Any]]] = [
                    ("upsert", lambda kb=kb, rows=rows: kb.upsert(rows)),
                    ("flush", kb.flush),
                    ("list documents", kb.documents),
                    ("read for the exact index", lambda kb=kb: sum(1 for _ in kb.index_rows())),
                ]
                for name, step in steps:
                    started = time.perf_counter()
                    step()
                    if name != "flush":
                        seconds[(path, name)].append(time.perf_counter() - started)
            print(f"round {round_ + 1} done", flush=True)

    print(f"\n{args.rows:,} rows of {args.dim}-d dense + 80 sparse weights; best of {args.rounds} round(s); "
          "ratio: median over rounds")
    print(f"{'operation':<28}{'client':>10}{'engine':>10}{'engine / client':>18}")
    for name in OPERATIONS:
        client, engine = seconds[("client", name)], seconds[("engine", name)]
        ratio = statistics.median(e / c for e, c in zip(engine, client, strict=True))
        print(f"{name:<28}{min(client):>9.3f}s{min(engine):>9.3f}s{ratio:>17.2f}x")


if __name__ == "__main__":
    main()
