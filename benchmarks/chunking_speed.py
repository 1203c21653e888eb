"""Chunking speed (MB/s) of one huge paragraph: the landed chunker (v1), the windowed one counting every piece
(v2) and the current one counting pieces from cached word counts (v3, same chunks as v2), by size.

Run from the project root (a script, not a test; it prints figures):

    .venv/bin/python benchmarks/chunking_speed.py                        # 0.25 0.5 1 2 MB, English sentences
    .venv/bin/python benchmarks/chunking_speed.py --kind words --sizes 0.125 0.25 0.5

The text has no newline (as the 30 MB one-line file of issue #10): ``sentences`` ends sentences with ". ",
``words`` has only spaces, ``nospace`` no separator at all (words run together), ``cjk`` is Chinese
with "。" every ~40 characters. Tokenizer: the tiny
bge-m3-format model's (rag/testing/tiny_bge_m3.py), or ``--model DIR`` (e.g. the real bge-m3 folder).
v1 is the chunker as it was before issue #10 (langchain's splitter counting with ``tokenizer.tokenize``);
v2 the chunker of issue #10 (each piece tokenised by the Rust backend); v3 the chunker of issue #14. They take
turns for each size and the best of ``--repeats`` runs is kept (the machine may be shared).
Constant MB/s across sizes means linear time.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from langchain_text_splitters import RecursiveCharacterTextSplitter  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from ingest.chunker import SEPARATORS, TokenChunker  # noqa: E402
from ingest.token_count import WordTokenCounter  # noqa: E402
from rag.testing.tiny_bge_m3 import build_bge_m3_like  # noqa: E402

WORDS = ["annual", "leave", "remote", "work", "policy", "employees", "days", "manager", "approval", "the", "of"]
HANZI = "员工每年享有十五天带薪年假请在系统中提交申请经理审批后生效远程办公每周最多三天"


class LandedChunker:
    """The chunker before issue #10 (CHUNKER_VERSION 1), for comparison (its rare token cut simplified)."""

    def __init__(self, tokenizer: Any, chunk_tokens: int, overlap_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer, chunk_size=chunk_tokens, chunk_overlap=overlap_tokens, separators=SEPARATORS,
            keep_separator="end", strip_whitespace=True,
        )

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def split(self, text: str) -> list[str]:
        chunks: list[str] = []
        for piece in self.splitter.split_text(text):
            piece = piece.strip()
            if piece and self.count(piece) <= self.chunk_tokens:
                chunks.append(piece)
            elif piece:
                offsets = self.tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True)[
                    "offset_mapping"]
                while offsets:
                    window, offsets = offsets[: self.chunk_tokens], offsets[self.chunk_tokens:]
                    chunks.append(piece[window[0][0] : window[-1][1]])
        return chunks


def make_text(kind: str, chars: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    while size < chars:
        if kind == "sentences":
            part = " ".join(rng.choice(WORDS) for _ in range(14)).capitalize() + ". "
        elif kind in ("words", "nospace"):
            part = rng.choice(WORDS) + (" " if kind == "words" else "")
        else:
            part = "".join(rng.choice(HANZI) for _ in range(40)) + "。"
        parts.append(part)
        size += len(part)
    return "".join(parts)[:chars]


def best_seconds(split: Callable[[str], list[str]], text: str, repeats: int) -> tuple[float, int]:
    """The best time of ``repeats`` runs and the number of chunks."""
    best, chunks = float("inf"), 0
    for _ in range(repeats):
        started = time.perf_counter()
        chunks = len(split(text))
        best = min(best, time.perf_counter() - started)
    return best, chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0], help="MB of text")
    parser.add_argument("--kind", choices=["sentences", "words", "nospace", "cjk"], default="sentences")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--chunk-tokens", type=int, default=512)
    parser.add_argument("--overlap-tokens", type=int, default=64)
    parser.add_argument("--model", type=Path, help="a tokenizer folder (default: the tiny test model's)")
    parser.add_argument("--skip-landed-over", type=float, default=2.0, help="MB above which v1 is not run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_bge_m3_like(Path(tmp) / "tiny", seed=0, max_length=8192)
        tokenizer = AutoTokenizer.from_pretrained(str(model))
    per_piece = TokenChunker(tokenizer, args.chunk_tokens, args.overlap_tokens)
    per_piece.counter.by_words = False  # every piece tokenised, as before issue #14
    chunkers = {
        "v1 landed": LandedChunker(tokenizer, args.chunk_tokens, args.overlap_tokens),
        "v2 windowed": per_piece,
        "v3 words": TokenChunker(tokenizer, args.chunk_tokens, args.overlap_tokens),
    }
    print(f"kind={args.kind} chunk_tokens={args.chunk_tokens} overlap={args.overlap_tokens} "
          f"tokenizer={'tiny bge-m3-format' if args.model is None else args.model}")
    print(f"{'MB':>6} {'chunker':<12} {'seconds':>8} {'MB/s':>7} {'chunks':>7}")
    for size in args.sizes:
        text = make_text(args.kind, int(size * 1_000_000))
        mb = len(text.encode("utf-8")) / 1_000_000
        for name, chunker in chunkers.items():  # the variants take turns at each size
            if name.startswith("v1") and size > args.skip_landed_over:
                continue
            if name.startswith("v3"):
                chunker.counter = WordTokenCounter(chunker.backend)  # a cold word cache for every size
            seconds, chunks = best_seconds(chunker.split, text, args.repeats)
            print(f"{size:>6g} {name:<12} {seconds:>8.2f} {mb / seconds:>7.3f} {chunks:>7}", flush=True)


if __name__ == "__main__":
    main()
