"""Cross-encoder reranking speed (ms per query) for 10 / 20 / 50 candidates, fp32 vs dynamic int8, and the
agreement of int8's order with fp32's (Spearman); token-budget batches vs fixed-count batches at 20 candidates.

Run from the project root (a script, not a test; it prints figures):

    .venv/bin/python benchmarks/rerank_speed.py                           # tiny bge-reranker-v2-m3-format model
    .venv/bin/python benchmarks/rerank_speed.py --full-size --queries 2   # bge-reranker-v2-m3's real architecture

Queries are XQuAD questions (zh and en, alternating); each query's candidates are a mix of XQuAD contexts (zh,
en) and SciFact abstracts from ../shared/data, read in place, the first 10 / 20 / 50 of the same list.
``--full-size`` builds bge-reranker-v2-m3's architecture (XLM-R large with a one-logit head, 568M parameters)
with random weights: its speed is the real model's, its scores mean nothing, so only time and fp32/int8
agreement are reported. The two models are loaded as users load them (``FlagCrossEncoder`` with
``retrieval.reranker.quantize`` none / int8). Timings are the best of ``--repeats`` runs, the variants taking
turns (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.config import RerankerSettings  # noqa: E402
from rag.rerank import FlagCrossEncoder, RerankScore  # noqa: E402
from rag.testing.tiny_bge_reranker import build_bge_reranker_like  # noqa: E402

QUERY_FILES = ["xquad_zh_en/queries_zh.jsonl", "xquad_zh_en/queries_en.jsonl"]
PASSAGE_SOURCES = [  # (file under the data folder, fields joined into the text)
    ("xquad_zh_en/corpus_zh.jsonl", ("text",)),
    ("xquad_zh_en/corpus_en.jsonl", ("text",)),
    ("scifact/corpus.jsonl", ("title", "text")),
]


def read_jsonl(path: Path, n: int, fields: tuple[str, ...] = ("text",)) -> list[str]:
    if not path.exists():
        sys.exit(f"missing {path}: pass --data to the folder holding xquad_zh_en/ and scifact/")
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(n), fh, strict=False)]
    return ["\n".join(r[f] for f in fields if r.get(f)) for r in rows]


def load_queries(data: Path, n: int) -> list[str]:
    """``n`` questions, zh and en in turn."""
    pools = [read_jsonl(data / name, n) for name in QUERY_FILES]
    return [pools[i % len(pools)][i // len(pools)] for i in range(n)]


def load_candidates(data: Path, queries: int, n: int) -> list[list[str]]:
    """``n`` candidate passages per query, zh / en contexts and abstracts in turn, a different list per query."""
    per_source = queries * n // len(PASSAGE_SOURCES) + n
    pools = [read_jsonl(data / name, per_source, fields) for name, fields in PASSAGE_SOURCES]
    mixed = [pools[i % len(pools)][i // len(pools)] for i in range(per_source * len(pools))]
    return [mixed[q * n:(q + 1) * n] for q in range(queries)]


def best_of(variants: list[Callable[[], object]], repeats: int) -> list[tuple[float, object]]:
    """Best time and last result of each variant, run in turn ``repeats`` times."""
    best = [float("inf")] * len(variants)
    results: list[object] = [None] * len(variants)
    for _ in range(repeats):
        for i, run in enumerate(variants):
            started = time.perf_counter()
            results[i] = run()
            best[i] = min(best[i], time.perf_counter() - started)
    return list(zip(best, results, strict=True))


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation of two score lists (Pearson of their ranks; scores here have no ties)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def scorer(model: FlagCrossEncoder, queries: list[str], candidates: list[list[str]], n: int,
           batch_tokens: int) -> Callable[[], list[list[RerankScore]]]:
    def run() -> list[list[RerankScore]]:
        model.batch_tokens = batch_tokens
        return [model.score(q, c[:n]) for q, c in zip(queries, candidates, strict=True)]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full-size", action="store_true", help="bge-reranker-v2-m3's architecture, random weights")
    parser.add_argument("--queries", type=int, default=None, help="queries (default 8; 2 with --full-size)")
    parser.add_argument("--candidates", default="10,20,50", help="candidate counts (default 10,20,50)")
    parser.add_argument("--max-length", type=int, default=512, help="tokens per pair (default 512)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batch-tokens", type=int, default=8192, help="token budget per forward pass")
    parser.add_argument("--fixed-at", type=int, default=20, help="also time fixed-count batches here (0: skip)")
    parser.add_argument("--repeats", type=int, default=None, help="best of N runs (default 3; 1 with --full-size)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's choice)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    args.queries = args.queries or (2 if args.full_size else 8)
    args.repeats = args.repeats or (1 if args.full_size else 3)
    counts = [int(x) for x in args.candidates.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    queries = load_queries(args.data, args.queries)
    candidates = load_candidates(args.data, args.queries, max(counts))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# Rerank speed: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads, int8 engine {torch.backends.quantized.engine}), "
          f"load average {load:.1f}")
    label = "bge-reranker-v2-m3 (full)" if args.full_size else "bge-reranker-v2-m3 (tiny)"
    with tempfile.TemporaryDirectory(prefix="rerank-bench-") as tmp:
        print(f"\n## {label}: building the model ...", flush=True)
        started = time.perf_counter()
        texts = queries + [p for c in candidates for p in c]
        model_dir = build_bge_reranker_like(Path(tmp) / "model", seed=0, full_size=args.full_size,
                                            max_length=args.max_length, extra_texts=texts)
        models = {
            numerics: FlagCrossEncoder(RerankerSettings(
                model=str(model_dir), device="cpu", quantize=quantize, batch_size=args.batch_size,
                batch_tokens=args.batch_tokens, max_length=args.max_length))
            for numerics, quantize in (("fp32", "none"), ("int8", "int8"))
        }
        print(f"built and loaded (fp32 and int8) in {time.perf_counter() - started:.0f}s", flush=True)
        for model in models.values():
            model.score(queries[0], candidates[0][:2])  # warm-up
        fp32 = models["fp32"]
        for n in counts:
            tokens = sum(len(p["input_ids"]) for q, c in zip(queries, candidates, strict=True)
                         for p in fp32._pairs(q, c[:n]))
            budgets = [("int8", args.batch_tokens), ("fp32", args.batch_tokens)]
            if n == args.fixed_at:
                budgets += [("int8", 0), ("fp32", 0)]
            timed = best_of([scorer(models[num], queries, candidates, n, bt) for num, bt in budgets], args.repeats)
            print(f"\n{n} candidates: {tokens / args.queries:.0f} pair tokens per query (max_length "
                  f"{args.max_length}), {args.queries} queries", flush=True)
            results = {}
            for (numerics, budget), (seconds, found) in zip(budgets, timed, strict=True):
                batching = f"{budget}-token batches" if budget else f"{args.batch_size} pairs per batch"
                print(f"  {numerics:<5} {batching:<22} {seconds * 1000 / args.queries:9.0f} ms per query "
                      f"{tokens / seconds:7.0f} tokens/s", flush=True)
                results.setdefault(numerics, found)
            rho = [spearman([s.raw for s in a], [s.raw for s in b])
                   for a, b in zip(results["fp32"], results["int8"], strict=True)]  # type: ignore[call-overload]
            print(f"  int8 vs fp32 order: Spearman mean {np.mean(rho):.4f}, min {np.min(rho):.4f}", flush=True)


if __name__ == "__main__":
    main()
