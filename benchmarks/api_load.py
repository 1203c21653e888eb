"""Load on `rag serve` over a real socket: 20 concurrent retrieval requests and 5 concurrent streaming chats, checked
to give the same results as the same requests one at a time, with p50 / p95 latencies of both.

A tiny bge-m3-format model (built on the fly) and examples/kb ingested into embedded milvus-lite; `rag serve` runs
as a subprocess on a free port. The LLM is the test suite's Ollama-protocol server (tests/support, a canned reply
streamed word by word every --piece-delay seconds) unless --ollama URL names a real Ollama (then --model).
Sequential and concurrent waves take turns (--rounds), so load on the machine affects both alike.

    .venv/bin/python benchmarks/api_load.py                    # 3 rounds of 20 retrievals + 5 streamed chats
    .venv/bin/python benchmarks/api_load.py --rounds 5 --ollama http://127.0.0.1:11434 --model qwen2.5:3b

Times are the tiny model's; with bge-m3 on CPU each query's encoding adds roughly 30-100 ms (README, Performance).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support: the suite's Ollama-protocol server, free ports, servers started

from ingest import IngestPipeline  # noqa: E402
from rag.config import load_settings  # noqa: E402
from rag.encoder import load_encoder  # noqa: E402
from rag.store import MilvusStore  # noqa: E402
from rag.testing.tiny_bge_m3 import build_bge_m3_like  # noqa: E402
from tests.support.ollama_server import free_port  # noqa: E402
from tests.support.processes import answers, serving  # noqa: E402

EXAMPLES = ROOT / "examples" / "kb"
KB = "bench_api"
KEY = "bench-key"
REPLY = "Employees may work remotely up to three days per week [1]. Fully remote needs approval [2]."
QUERIES = [
    "How many days per week may employees work remotely?", "年假有多少天？",
    "How does the sync engine resolve conflicts?", "How do I cancel my plan?", "remote work approval",
    "What happens to my notes when a plan ends?",
    "入职第一天需要做什么？", "Which file formats can I import?", "病假怎么申请？", "What is a workspace?",
]
HEADERS = {"Authorization": f"Bearer {KEY}"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def retrieval(client: httpx.Client, url: str, query: str) -> tuple[float, list[tuple[str, float]]]:
    started = time.perf_counter()
    response = client.post(f"{url}/v1/retrieval", json={"query": query}, headers=HEADERS)
    response.raise_for_status()
    found = [(doc["id"], doc["scores"]["final"]) for doc in response.json()["documents"]]
    return (time.perf_counter() - started) * 1000, found


def streamed_chat(client: httpx.Client, url: str, question: str) -> tuple[float, float, tuple[str, list[str]]]:
    """(ms to the first content piece, ms to [DONE], (answer, source ids))."""
    import json

    body = {"model": f"ragscope/{KB}", "stream": True, "messages": [{"role": "user", "content": question}]}
    started = time.perf_counter()
    first = None
    text, sources = "", []
    with client.stream("POST", f"{url}/v1/chat/completions", json=body, headers=HEADERS) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            for choice in event.get("choices", []):
                piece = choice["delta"].get("content") or ""
                if piece and first is None:
                    first = (time.perf_counter() - started) * 1000
                text += piece
            if "sources" in event:
                sources = [s["id"] for s in event["sources"]]
    total = (time.perf_counter() - started) * 1000
    return first if first is not None else total, total, (text, sources)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20, help="concurrent retrieval requests per wave")
    parser.add_argument("--chats", type=int, default=5, help="concurrent streaming chats per wave")
    parser.add_argument("--rounds", type=int, default=3, help="sequential + concurrent waves, taking turns")
    parser.add_argument("--piece-delay", type=float, default=0.02, help="seconds between the stand-in LLM's pieces")
    parser.add_argument("--ollama", help="a real Ollama's URL instead of the stand-in")
    parser.add_argument("--model", default="qwen2.5:3b", help="the model of --ollama")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="api-load-"))
    stand_in = None
    try:
        if args.ollama:
            llm_url = args.ollama
        else:
            from tests.support.ollama_server import ChatBehaviour, OllamaTestServer

            stand_in = OllamaTestServer(ChatBehaviour(reply=REPLY, piece_delay_s=args.piece_delay)).start()
            llm_url = stand_in.url
        texts = [p.read_text(encoding="utf-8", errors="ignore") for p in sorted(EXAMPLES.rglob("*"))
                 if p.suffix in {".md", ".txt", ".html", ".csv", ".json", ".jsonl"}]
        model = build_bge_m3_like(work / "tiny-model", seed=0, extra_texts=texts, max_length=512)
        config = {
            "embedding": {"model": str(model), "device": "cpu", "max_length": 512},
            "milvus": {"uri": str(work / "milvus.db")}, "chunking": {"chunk_tokens": 96, "overlap_tokens": 16},
            "kb": {"name": KB}, "app": {"data_dir": str(work / "data")},
            "llm": {"base_url": llm_url, "model": args.model}, "api": {"keys": [KEY]},
        }
        config_file = work / "bench.yaml"
        config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
        settings = load_settings(config_file)
        with MilvusStore(settings.milvus) as store:
            report = IngestPipeline(settings, load_encoder(settings.embedding), store).run([EXAMPLES], kb=KB)
        print(f"ingested {EXAMPLES.name}: {report.chunks_written} chunks")
        run_load(args, config_file)
    finally:
        if stand_in is not None:
            stand_in.stop()
        shutil.rmtree(work, ignore_errors=True)


def run_load(args: argparse.Namespace, config_file: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAG_")}
    env.update(RAG_CONFIG=str(config_file), HF_HUB_OFFLINE="1")
    exe = Path(sys.executable).parent / "rag"
    url = f"http://127.0.0.1:{port}"
    with ExitStack() as running:
        try:
            running.enter_context(serving([str(exe), "serve", "--port", str(port)], what="rag serve", timeout_s=180,
                                          ready=lambda: answers(f"{url}/healthz"), env=env))
        except RuntimeError as exc:  # it exited or never answered: one line, no traceback
            raise SystemExit(str(exc)) from None
        queries = [QUERIES[i % len(QUERIES)] for i in range(args.requests)]
        questions = [QUERIES[i % len(QUERIES)] for i in range(args.chats)]
        times: dict[str, list[float]] = {name: [] for name in (
            "retrieval alone", "retrieval concurrent", "chat first piece alone", "chat first piece concurrent",
            "chat total alone", "chat total concurrent")}
        mismatches = checked = 0
        wave_s: list[float] = []
        with httpx.Client(timeout=300, limits=httpx.Limits(max_connections=args.requests + args.chats)) as client:
            for q in dict.fromkeys(queries):  # warm-up: first encodings, Milvus loading
                retrieval(client, url, q)
            for _ in range(args.rounds):
                alone: dict[str, Any] = {}
                for q in queries:
                    ms, found = retrieval(client, url, q)
                    times["retrieval alone"].append(ms)
                    alone[q] = found
                chats_alone: dict[str, Any] = {}
                for q in questions:
                    first, total, result = streamed_chat(client, url, q)
                    times["chat first piece alone"].append(first)
                    times["chat total alone"].append(total)
                    chats_alone[q] = result
                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=args.requests + args.chats) as pool:
                    searches = [pool.submit(retrieval, client, url, q) for q in queries]
                    chats = [pool.submit(streamed_chat, client, url, q) for q in questions]
                    search_results = [f.result() for f in searches]
                    chat_results = [f.result() for f in chats]
                wave_s.append(time.perf_counter() - started)
                for q, (ms, found) in zip(queries, search_results, strict=True):
                    times["retrieval concurrent"].append(ms)
                    checked += 1
                    mismatches += found != alone[q]
                for q, (first, total, result) in zip(questions, chat_results, strict=True):
                    times["chat first piece concurrent"].append(first)
                    times["chat total concurrent"].append(total)
                    checked += 1
                    mismatches += result != chats_alone[q]
    print(f"{args.rounds} rounds of {args.requests} retrievals + {args.chats} streamed chats; "
          f"LLM: {'Ollama at ' + args.ollama if args.ollama else f'stand-in, {args.piece_delay:g} s per piece'}")
    print(f"{'ms':<30}{'p50':>10}{'p95':>10}{'n':>6}")
    for name, values in times.items():
        print(f"{name:<30}{statistics.median(values):>10.1f}{percentile(values, 0.95):>10.1f}{len(values):>6}")
    ratio = statistics.median(times["retrieval concurrent"]) / statistics.median(times["retrieval alone"])
    print(f"concurrent wave: {statistics.median(wave_s):.2f} s (p50 of {len(wave_s)}); retrieval p50 under load / "
          f"alone: {ratio:.1f}x")
    print(f"same results as one at a time: {checked - mismatches}/{checked}")
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
