"""Query latency of hybrid retrieval (what `rag search` runs) at 10k and 100k chunks, split into steps.

The store part is synthetic (rag.testing.synthetic_kb): random normalised dense vectors of the tiny model's
dimension and random sparse weight dicts over its vocabulary, written to embedded milvus-lite (or a server with
--uri). Queries are real texts encoded by a tiny bge-m3-format model through FlagEmbedding, then searched and
rescored exactly by ``HybridRetriever.search``. Prints p50 / p95 milliseconds of the total and of encode, Milvus
and rescoring.

    .venv/bin/python benchmarks/query_latency.py                 # 10k and 100k chunks, 30 queries each
    .venv/bin/python benchmarks/query_latency.py --sizes 10000 --queries 200 --mode dense

Encode times are the tiny model's; benchmarks/query_encoding.py times bge-m3's architecture per question.
With the default settings an embedded knowledge base is searched exactly in process (``retrieval.exact_max_chunks``;
the "milvus" step is then that search); benchmarks/exact_search.py compares it with Milvus' own searches at 100k
x 1024-d. milvus-lite does use its HNSW index, but most of its search time goes into its per-row Python.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

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


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="ragscope-bench-"))
    try:
        model_dir = build_bge_m3_like(work / "tiny-model", seed=4, max_length=512)
        encoder = BGEM3Encoder(EmbeddingSettings(model=str(model_dir), device="cpu", max_length=512))
        model = ModelInfo.of(encoder)
        vocab = len(encoder.tokenizer)
        uri = args.uri or str(work / "bench.db")
        queries = [s for s in training_sentences() if len(s) > 8][: args.queries + args.warmup]
        if len(queries) < args.queries + args.warmup:
            raise SystemExit(f"at most {len(training_sentences()) - args.warmup} distinct queries are available")
        settings = RetrievalSettings(mode=args.mode, top_k=args.top_k, candidate_factor=args.candidate_factor,
                                     colbert_rerank=args.colbert)
        print(f"tiny model: dim {encoder.dim}, vocab {vocab}; milvus: {uri}; mode {args.mode}, top_k {args.top_k}, "
              f"candidates {args.top_k * args.candidate_factor} per search, colbert {args.colbert}; "
              f"{args.queries} queries (+{args.warmup} warm-up), {os.cpu_count()} CPUs")
        header = f"{'chunks':>8} {'build s':>8} | {'step':<10} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}"
        print(header)
        print("-" * len(header))
        with MilvusStore(MilvusSettings(uri=uri)) as store:
            for size in args.sizes:
                name = f"bench_{size}"
                build_s = build_collection(store, name, size, model, vocab)
                retriever = HybridRetriever.from_store(encoder, store, name, settings, cache_size=0)
                steps: dict[str, list[float]] = {"total": [], "encode": [], "milvus": [], "rescoring": []}
                if args.colbert:
                    steps["rerank"] = []
                for i, query in enumerate(queries):
                    t = retriever.search(query).timings
                    if i < args.warmup:
                        continue
                    steps["total"].append(t.total_ms)
                    steps["encode"].append(t.encode_ms)
                    steps["milvus"].append(t.milvus_ms)
                    steps["rescoring"].append(t.rescoring_ms)
                    if args.colbert:
                        steps["rerank"].append(t.rerank_ms)
                for j, (step, values) in enumerate(steps.items()):
                    lead = f"{size:>8} {build_s:>8.1f}" if j == 0 else " " * 17
                    print(f"{lead} | {step:<10} {percentile(values, 50):>8.2f} {percentile(values, 95):>8.2f} "
                          f"{statistics.fmean(values):>8.2f}")
                if not args.keep:
                    store.drop(name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="chunks per collection")
    parser.add_argument("--queries", type=int, default=30, help="timed queries per collection")
    parser.add_argument("--warmup", type=int, default=3, help="untimed queries first")
    parser.add_argument("--mode", choices=["dense", "sparse", "hybrid"], default="hybrid")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--candidate-factor", type=int, default=4)
    parser.add_argument("--colbert", action="store_true", help="also rerank with ColBERT (re-encodes chunk texts)")
    parser.add_argument("--uri", default="", help="a Milvus server (http://host:19530) instead of a temporary .db")
    parser.add_argument("--keep", action="store_true", help="keep the collections (only useful with --uri)")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
