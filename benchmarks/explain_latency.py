"""Explain-a-miss latency (what `rag explain` runs) at 10k and 100k chunks, beside plain search on the same store.

The store is query_latency.py's synthetic one (rag.testing.synthetic_kb: random vectors of the tiny model's
dimension and vocabulary) in embedded milvus-lite; queries are real texts encoded by the tiny bge-m3-format model.
For each query, interleaved so that all see the same machine load: one plain ``HybridRetriever.search``, then
``explain()`` of two missed chunks: one outside the candidate lists (a chunk picked at random, checked to be lost
there) and one lost at top_k (a candidate ranked just below top_k), each explained twice: searched exactly in
process (the default within ``retrieval.exact_max_chunks``; the index is read before timing starts) and by
Milvus (``exact_max_chunks: 0``, as over the budget or on a server). Prints p50 / p95 / mean milliseconds.

    .venv/bin/python benchmarks/explain_latency.py                      # 10k and 100k chunks, 10 queries each
    .venv/bin/python benchmarks/explain_latency.py --sizes 10000 --queries 30

What explain costs over a search: in process, every chunk's exact scores (ranks at any depth) and the heads of
the two lists with their vectors; through Milvus, one search per list with its full window (up to 16384 chunks,
vectors included) rescored exactly; then the real search, and one search per checked fix. A chunk is timed
only when explain finds it lost where it was picked from (n says how many; once, on the first query right after
the bulk insert, the search ranked the picked chunk differently from the search it was picked from).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

from rag.config import EmbeddingSettings, MilvusSettings, RetrievalSettings
from rag.encoder import BGEM3Encoder
from rag.retrieval import HybridRetriever
from rag.store import MilvusStore, ModelInfo
from rag.testing.sentences import training_sentences
from rag.testing.synthetic_kb import build_collection
from rag.testing.tiny_bge_m3 import build_bge_m3_like
from rag.workbench.explain import explain

T = TypeVar("T")
KINDS = ("search", "explain: outside the candidate lists", "explain: lost at top_k",
         "search, Milvus", "explain, Milvus: outside the candidate lists", "explain, Milvus: lost at top_k")


def timed(call: Callable[..., T], *args: Any) -> tuple[float, T]:
    """Milliseconds ``call(*args)`` took, and what it returned."""
    started = time.perf_counter()
    value = call(*args)
    return (time.perf_counter() - started) * 1000.0, value


def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="ragscope-bench-"))
    try:
        model_dir = build_bge_m3_like(work / "tiny-model", seed=4, max_length=512)
        encoder = BGEM3Encoder(EmbeddingSettings(model=str(model_dir), device="cpu", max_length=512))
        model, vocab = ModelInfo.of(encoder), len(encoder.tokenizer)
        queries = [s for s in training_sentences() if len(s) > 8][: args.queries + args.warmup]
        settings = RetrievalSettings(top_k=args.top_k, candidate_factor=args.candidate_factor)
        # The same candidates as `settings` (same candidate_limit), all of them returned: a chunk ranked top_k + 1.
        whole_pool = RetrievalSettings(top_k=settings.candidate_limit, candidate_factor=1)
        print(f"tiny model: dim {encoder.dim}, vocab {vocab}; embedded milvus-lite; hybrid weighted, top_k "
              f"{args.top_k}, {settings.candidate_limit} candidates per search; {args.queries} queries "
              f"(+{args.warmup} warm-up), {os.cpu_count()} CPUs")
        header = f"{'chunks':>8} {'build s':>8} | {'what':<46} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'n':>4}"
        print(header)
        print("-" * len(header))
        rng = np.random.default_rng(0)
        with MilvusStore(MilvusSettings(uri=str(work / "bench.db"))) as store:
            for size in args.sizes:
                name = f"bench_{size}"
                build_s = build_collection(store, name, size, model, vocab)
                retriever = HybridRetriever.from_store(encoder, store, name, settings, cache_size=0)
                milvus = HybridRetriever.from_store(encoder, store, name, settings.model_copy(
                    update={"exact_max_chunks": 0}), cache_size=0)
                pool = HybridRetriever.from_store(encoder, store, name, whole_pool, cache_size=0)
                exact = retriever.knowledge_base.exact
                for _ in range(3):  # the index is read on the first search (in the background past 20k chunks)
                    retriever.search(queries[0])
                    if exact is not None and exact.ready(timeout=3600):
                        break
                times: dict[str, list[float]] = {kind: [] for kind in KINDS}
                skipped = 0
                for i, query in enumerate(queries):
                    result = retriever.search(query)
                    retrieved = {d.metadata["id"] for d in result.documents}
                    candidates = [d.metadata["id"] for d in pool.search(query).documents]
                    below = next(c for c in candidates if c not in retrieved)  # the first one the top_k cut drops
                    outside = f"c{int(rng.integers(size)):08d}"
                    while outside in candidates:
                        outside = f"c{int(rng.integers(size)):08d}"
                    for variant, first in ((retriever, 0), (milvus, 3))[:: 1 if i % 2 else -1]:  # turns
                        ms_variant, _ = timed(variant.search, query)
                        ms_outside, lost_outside = timed(explain, variant, query, outside)
                        ms_below, lost_below = timed(explain, variant, query, below)
                        if i < args.warmup:
                            continue
                        times[KINDS[first]].append(ms_variant)
                        for kind, ms, lost, expected in ((KINDS[first + 1], ms_outside, lost_outside, "candidates"),
                                                         (KINDS[first + 2], ms_below, lost_below, "top_k")):
                            if lost.lost_at == expected:
                                times[kind].append(ms)
                            else:  # see the docstring
                                skipped += 1
                for j, (kind, values) in enumerate(times.items()):
                    lead = f"{size:>8} {build_s:>8.1f}" if j == 0 else " " * 17
                    print(f"{lead} | {kind:<46} {np.percentile(values, 50):>8.1f} {np.percentile(values, 95):>8.1f} "
                          f"{statistics.fmean(values):>8.1f} {len(values):>4}", flush=True)
                if skipped:
                    print(f"{'':17} | ({skipped} explanations left out: the chunk was not lost where expected)")
                store.drop(name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="chunks per collection")
    parser.add_argument("--queries", type=int, default=10, help="timed queries per collection")
    parser.add_argument("--warmup", type=int, default=1, help="untimed queries first")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--candidate-factor", type=int, default=4)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
