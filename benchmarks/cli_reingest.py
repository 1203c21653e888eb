"""The whole `rag-ingest` call on an unchanged folder: the model loaded at the start (as before) or on demand.

    python benchmarks/cli_reingest.py --generate 2000 --rounds 5                 # tiny model
    python benchmarks/cli_reingest.py --generate 20 --rounds 5 --full-size       # bge-m3's architecture (2.2 GB)
    python benchmarks/cli_reingest.py --generate 20 --rounds 5 --full-size --quantize int8

A first `rag-ingest` fills an embedded knowledge base; then each round re-ingests the unchanged folder twice, as
new processes, in turns: "model at start" runs the CLI after loading the encoder as `rag-ingest` did before it
loaded the model on demand (rag.encoder.deferred), "on demand" runs `rag-ingest` as it is. Both encode nothing.
Printed: each variant's median wall time and peak memory (the process' maximum resident set size), and the ratio
on demand / at start per round. --full-size builds bge-m3's real architecture with random weights (speed and
memory only); the page cache is warm (the weights were just written or read), so a cold disk would add more.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

AT_START = (  # the CLI as before: the encoder (and its model) loaded before anything else
    "import sys; from ingest.cli import main, _settings; from rag.encoder import load_encoder; "
    "load_encoder(_settings(None).embedding); sys.argv[0] = 'rag-ingest'; main()"
)
VARIANTS = {"model at start": ["-c", AT_START], "on demand": ["-m", "ingest.cli"]}  # then the folder


def run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of ``python args`` (which must succeed)."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    output = process.stdout.read() if process.stdout is not None else b""
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{output.decode(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024


def prepare(work: Path, documents: int, full_size: bool) -> None:
    """The model and the folder, written by a process of their own: a child's peak memory (ru_maxrss) starts from
    its parent's resident size when it is forked, so the parent must stay small."""
    from ingest_speed import generate_corpus

    from rag.testing.tiny_bge_m3 import build_bge_m3_like

    build_bge_m3_like(work / "model", full_size=full_size, max_length=8192)
    generate_corpus(work / "docs", documents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generate", type=int, default=2000, metavar="N", help="generated zh/en documents")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--full-size", action="store_true", help="bge-m3's architecture with random weights")
    parser.add_argument("--quantize", choices=["none", "int8"], default="none")
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)  # the child that writes model and folder
    args = parser.parse_args()
    if args.prepare:
        prepare(args.prepare, args.generate, args.full_size)
        return

    work = Path(tempfile.mkdtemp(prefix="cli-reingest-"))
    try:
        size = ["--full-size"] if args.full_size else []
        run([__file__, "--prepare", str(work), "--generate", str(args.generate), *size], dict(os.environ))
        model = work / "model"
        env = {
            **os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "RAG_EMBEDDING__MODEL": str(model), "RAG_EMBEDDING__DEVICE": "cpu",
            "RAG_EMBEDDING__QUANTIZE": args.quantize, "RAG_MILVUS__URI": str(work / "milvus.db"),
            "RAG_APP__DATA_DIR": str(work / "data"), "RAG_KB__NAME": "bench",
        }
        first, _ = run(["-m", "ingest.cli", str(work / "docs")], env)
        label = "bge-m3 architecture" if args.full_size else "tiny model"
        label += ", int8" if args.quantize == "int8" else ""
        print(f"{label}; {args.generate} documents; first ingest (CLI) {first:.1f}s; {os.cpu_count()} cores")
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        memory: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for round_number in range(args.rounds):
            names = list(VARIANTS) if round_number % 2 == 0 else list(reversed(VARIANTS))  # alternate who goes first
            for name in names:
                seconds, peak = run([*VARIANTS[name], str(work / "docs")], env)
                times[name].append(seconds)
                memory[name].append(peak)
            ratio = times["on demand"][-1] / times["model at start"][-1]
            print(f"round {round_number + 1}: model at start {times['model at start'][-1]:.2f}s, "
                  f"on demand {times['on demand'][-1]:.2f}s ({ratio:.2f}x)")
        print()
        for name in VARIANTS:
            print(f"{name:15} re-ingest (whole CLI call): median {statistics.median(times[name]):.2f}s, "
                  f"peak memory {statistics.median(memory[name]):,.0f} MB")
        ratios = [d / s for d, s in zip(times["on demand"], times["model at start"], strict=True)]
        print(f"on demand / model at start: {statistics.median(ratios):.2f}x the time "
              f"(rounds {', '.join(f'{r:.2f}' for r in ratios)}), "
              f"{statistics.median(memory['on demand']) / statistics.median(memory['model at start']):.2f}x the memory")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
