"""Ingest speed for a folder: files, chunks, tokens, encoder seconds vs total seconds, and a re-ingest.

    python benchmarks/ingest_speed.py [FOLDER] [--model PATH | --full-size] [--copies N]

Without --model a tiny bge-m3-format model is built in a temporary folder (fast, meaningless vectors);
--full-size builds bge-m3's real architecture with random weights (speed only, no quality claim).
Figures printed: the first ingest (total, time inside the encoder, share outside it), the encoder alone on
the same chunks (the overhead target is under 10%), and a second run of the unchanged folder (which must
encode nothing; target at least 100x faster). The database is a fresh embedded milvus-lite; the encoding
cache is not used, so every figure is a real encode.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.pipeline import IngestPipeline
from rag.config import load_settings
from rag.encoder import load_encoder
from rag.store import MilvusStore
from rag.testing.tiny_bge_m3 import build_bge_m3_like

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "kb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=EXAMPLES)
    parser.add_argument("--model", help="a bge-m3 model directory (default: a tiny model built here)")
    parser.add_argument("--full-size", action="store_true", help="bge-m3's architecture with random weights")
    parser.add_argument("--copies", type=int, default=1, help="ingest N copies of the folder (more data)")
    parser.add_argument("--chunk-tokens", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    try:
        model = args.model or str(build_bge_m3_like(work / "model", full_size=args.full_size, max_length=8192))
        data = work / "data"
        for i in range(args.copies):
            shutil.copytree(args.folder, data / f"copy-{i}")
        settings = load_settings(
            embedding={"model": model, "device": "cpu", "batch_size": args.batch_size},
            milvus={"uri": str(work / "milvus.db")},
            chunking={"chunk_tokens": args.chunk_tokens, "overlap_tokens": min(64, args.chunk_tokens // 8)},
            kb={"name": "bench"},
        )
        started = time.perf_counter()
        encoder = load_encoder(settings.embedding)
        load_seconds = time.perf_counter() - started
        with MilvusStore(settings.milvus) as store:
            pipeline = IngestPipeline(settings, encoder, store)
            first = pipeline.run([data])
            encoded_before = encoder.texts_encoded
            second = pipeline.run([data])
            second_encoded = encoder.texts_encoded - encoded_before
            base = store.open("bench")
            texts = [row["text"] for doc_id in base.documents() for row in base.chunks(doc_id)]
        started = time.perf_counter()
        encoder.encode(texts)  # the same chunks through the encoder alone: the floor an ingest can reach
        pure_seconds = time.perf_counter() - started
        label = args.model or ("bge-m3 architecture, random weights" if args.full_size else "tiny test model")
        files = sum(1 for f in first.files if f.outcome != "failed")
        outside = first.total_seconds - first.encode_seconds
        print(f"model: {label} (loaded in {load_seconds:.1f}s); threads: {os.cpu_count()} cores")
        print(f"folder: {args.folder} x {args.copies}: {files} files, {first.added} documents, "
              f"{first.chunks_written} chunks, {first.tokens_encoded:,} tokens")
        print(f"first ingest: total {first.total_seconds:.2f}s, encoder {first.encode_seconds:.2f}s "
              f"({first.tokens_per_second:,.0f} tokens/s), outside the encoder {outside:.2f}s "
              f"= {100 * outside / first.total_seconds:.1f}% of the total")
        print(f"encoder alone on the same {len(texts)} chunks: {pure_seconds:.2f}s; ingest overhead over it "
              f"{100 * (first.total_seconds - pure_seconds) / pure_seconds:.1f}%")
        print(f"re-ingest (unchanged): total {second.total_seconds:.3f}s, texts encoded "
              f"{second_encoded}, {first.total_seconds / max(second.total_seconds, 1e-9):.0f}x "
              "faster than the first ingest")
        if first.failed:
            print(f"failed files: {len(first.failed)} (e.g. {first.failed[0].source}: {first.failed[0].reason})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
