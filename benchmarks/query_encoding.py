"""Per-question query encoding latency, fp32 vs int8 (``embedding.quantize``), what a search waits for first.

    .venv/bin/python benchmarks/query_encoding.py --full-size      # bge-m3's real architecture, random weights
    .venv/bin/python benchmarks/query_encoding.py                  # the tiny test model

Questions are XQuAD's (zh and en, ../shared/data/xquad_zh_en), encoded one at a time as a search does (dense +
sparse, no ColBERT), fp32 and int8 taking turns per question. ``--full-size`` builds XLM-RoBERTa large (568M
parameters) with random weights: its speed is bge-m3's, its vectors mean nothing. Prints p50 / p95 ms and the
tokens per question.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

from rag.config import EmbeddingSettings
from rag.encoder import create_encoder
from rag.testing.tiny_bge_m3 import build_bge_m3_like

ROOT = Path(__file__).resolve().parent.parent


def questions(data: Path, n: int) -> list[str]:
    """``n`` questions, zh and en in turn."""
    pools = []
    for name in ("queries_zh.jsonl", "queries_en.jsonl"):
        with (data / "xquad_zh_en" / name).open(encoding="utf-8") as fh:
            pools.append([json.loads(line)["text"] for _, line in zip(range(n), fh, strict=False)])
    return [pools[i % 2][i // 2] for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-size", action="store_true", help="bge-m3's real architecture, random weights")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    texts = questions(args.data, args.questions + 2)
    with tempfile.TemporaryDirectory(prefix="ragscope-qenc-") as work:
        started = time.perf_counter()
        model = build_bge_m3_like(Path(work) / "model", seed=0, full_size=args.full_size, max_length=512,
                                  extra_texts=texts)
        encoders = {q: create_encoder(EmbeddingSettings(model=str(model), device="cpu", max_length=512, quantize=q,
                                                        cache=False))
                    for q in ("none", "int8")}
        print(f"{'bge-m3 architecture (random weights)' if args.full_size else 'tiny model'} built and loaded in "
              f"{time.perf_counter() - started:.0f} s; {os.cpu_count()} CPUs, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
        tokens = [len(ids) for ids in encoders["none"].tokenizer(texts)["input_ids"]]
        times: dict[str, list[float]] = {"none": [], "int8": []}
        for n, text in enumerate(texts):
            for q in (("none", "int8") if n % 2 == 0 else ("int8", "none")):
                tick = time.perf_counter()
                encoders[q].encode([text])
                if n >= 2:  # the first two warm up
                    times[q].append((time.perf_counter() - tick) * 1000)
        timed = tokens[2:]
        print(f"{len(timed)} questions (zh and en), tokens per question: median {statistics.median(timed):.0f} "
              f"(min {min(timed)}, max {max(timed)})")
        for q, label in (("none", "fp32"), ("int8", "int8")):
            print(f"{label}: p50 {np.percentile(times[q], 50):.0f} ms, p95 {np.percentile(times[q], 95):.0f} ms")
        print(f"int8 / fp32 p50: {np.percentile(times['int8'], 50) / np.percentile(times['none'], 50):.2f}x")


if __name__ == "__main__":
    main()
