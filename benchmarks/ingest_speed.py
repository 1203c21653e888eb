"""Ingest speed: the share of time outside the encoder (by stage), and a re-ingest of the unchanged folder.

    python benchmarks/ingest_speed.py --generate 2000            # 2,000 generated zh/en documents, tiny model
    python benchmarks/ingest_speed.py --generate 20 --full-size  # bge-m3's architecture on a small folder
    python benchmarks/ingest_speed.py examples/kb --full-size [--copies N]

Without --model a tiny bge-m3-format model is built in a temporary folder (fast, meaningless vectors: it
stands in for bge-m3 on a GPU, where the overhead around the encoder sets the speed); --full-size builds
bge-m3's real architecture with random weights (speed only, no quality claim). --generate N writes N
Markdown and text documents of Chinese, English and mixed paragraphs (some longer than a chunk), in 20
folders, seeded, instead of reading FOLDER.

Variants take turns in one run (``--rounds`` times), each on a fresh embedded milvus-lite, the encoding cache off
(``--encoding-cache on off`` compares a fresh one with none): Milvus writes inline after each group's encoding, or
in the background while the next group is read, chunked and encoded (``--writes`` keeps one), for each number of
files per group given with ``--groups`` (``ingest.documents_per_batch``; ``auto``, the default: unset, groups sized
by encoding time) and each number of worker processes parsing and chunking ahead given with ``--workers``
(``ingest.workers``; their start-up counts unless ``--warm-workers``), with the file hash cache on (the default:
ingest.file_hashes, a fresh one per variant and round) or off (``--file-hash-cache on off``). For each: the first
ingest by stage (seconds and share of the total; "outside the encoder" is the total minus the encoder's time;
background writes and workers overlap the other stages, and the workers' reading and chunking is not in the table),
then a second run of the unchanged folder (it must encode nothing; the exact index is unloaded first, so it starts
as a new process would, from the snapshot the first run left) and how many times faster it was (the fastest first
ingest and the fastest re-ingest of the rounds). Last, the encoder alone on the same chunks: the floor an ingest
can reach. ``--device cuda`` runs the encoder on a GPU (fp16), with ``--warmup`` (an untimed ingest first) and
larger batches (``--batch-size``, ``--batch-tokens``).
"""

from __future__ import annotations

import argparse
import functools
import gc
import inspect
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ingest.pipeline as pipeline_module
from ingest import planner as planner_module
from ingest.chunker import TokenChunker
from ingest.discovery import FileFinder
from ingest.pipeline import IngestPipeline
from rag.config import load_settings
from rag.encoder import CachedEncoder, EncodingCache, load_encoder
from rag.store import KnowledgeBase, MilvusStore
from rag.testing.sentences import training_sentences
from rag.testing.tiny_bge_m3 import build_bge_m3_like

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "kb"
WRITES = {"inline writes": False, "background writes": True}
if "background_writes" not in inspect.signature(IngestPipeline).parameters:
    WRITES = {"landed pipeline": None}
STAGES = ["discovery", "open", "look-ups", "reading", "chunking", "encoder", "writes", "flush"]
HASH_CACHE = "data_dir" in inspect.signature(IngestPipeline).parameters  # the pipeline before it had none
try:
    from rag.store.exact_search import unload
except ImportError:  # a store from before exact index snapshots: nothing held across runs to unload

    def unload(location: str, name: str) -> None:
        pass


def generate_corpus(folder: Path, documents: int, seed: int = 0) -> None:
    """``documents`` files (.md with a heading, .txt) of 1-2 paragraphs: Chinese, English or mixed sentences,
    1 to 30 per paragraph, so some paragraphs are longer than a chunk and are split by sentences."""
    rng = random.Random(seed)
    sentences = training_sentences()
    chinese = [s for s in sentences if any("\u4e00" <= c <= "\u9fff" for c in s)]
    english = [s for s in sentences if s not in chinese]
    for i in range(documents):
        paragraphs = []
        for _ in range(rng.randint(1, 2)):
            pool = rng.choice([chinese, english, sentences])
            joiner = "" if pool is chinese else " "
            paragraphs.append(joiner.join(rng.choice(pool) for _ in range(rng.choice([1, 2, 3, 5, 8, 30]))))
        sub = folder / f"part-{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        suffix = ".md" if i % 2 else ".txt"
        head = f"# Document {i}\n\n" if suffix == ".md" else ""
        (sub / f"doc-{i:04d}{suffix}").write_text(head + "\n\n".join(paragraphs) + "\n", encoding="utf-8")


def generate_pdfs(folder: Path, count: int, megabytes: float, seed: int = 0) -> None:
    """``count`` PDFs of about ``megabytes`` each: a page with a few lines of text and an image of random pixels
    (incompressible), large files with little text, as illustrated or scanned reports with a text layer are."""
    import numpy as np
    from PIL import Image
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    rng = np.random.default_rng(seed)
    side = max(8, int((megabytes * 1024 * 1024 / 3) ** 0.5))
    sentences = [s for s in training_sentences() if s.isascii()]  # reportlab's standard fonts have no Chinese
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pdf = canvas.Canvas(str(folder / f"report-{i:04d}.pdf"), invariant=1)
        for line, sentence in enumerate(sentences[i % len(sentences) :][:3]):
            pdf.drawString(72, 760 - 14 * line, sentence)
        pixels = Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
        pdf.drawImage(ImageReader(pixels), 72, 200, width=400, height=400)
        pdf.showPage()
        pdf.save()


class StageClock:
    """Seconds spent in each stage, by wrapping the functions that do the stage's work (any thread)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner: Any, name: str, stage: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - started

        is_static = isinstance(inspect.getattr_static(owner, name), staticmethod)
        setattr(owner, name, staticmethod(timed) if is_static else timed)


def install_clock(clock: StageClock) -> None:
    clock.wrap(FileFinder, "find", "discovery")
    clock.wrap(MilvusStore, "open", "open")
    clock.wrap(planner_module if hasattr(planner_module, "read_file") else pipeline_module, "read_file", "reading")
    clock.wrap(TokenChunker, "split", "chunking")
    clock.wrap(KnowledgeBase, "flush", "flush")
    # The pipeline before issue #14 (to compare, run this script from a checkout of it): per-file writes, and
    # look-ups inside _identify.
    landed = not hasattr(IngestPipeline, "_write_group")
    clock.wrap(IngestPipeline, "_identify" if landed else "_lookup", "look-ups")
    clock.wrap(IngestPipeline, "_write_file" if landed else "_write_group", "writes")


def group_size(text: str) -> int | None:
    """A ``--groups`` value: a number of files, or ``auto`` (None: ingest.documents_per_batch unset)."""
    return None if text == "auto" else int(text)


def record_group_sizes() -> list[int]:
    """The list that the pipeline's group sizes are appended to, as it takes them (ingest.grouping)."""
    taken: list[int] = []
    try:
        from ingest.grouping import GroupSizer
    except ImportError:  # a pipeline from before groups were sized by time
        return taken
    original = GroupSizer.take

    def take(self: Any, files: Any) -> int:
        count = original(self, files)
        taken.append(count)
        return count

    GroupSizer.take = take  # type: ignore[method-assign]
    return taken


def describe_groups(sizes: list[int]) -> str:
    """``32`` when every group had 32 files, else ``3 groups: 32, 992, 976`` (at most 6 shown)."""
    if len(set(sizes[:-1])) <= 1 and sizes[-1] <= sizes[0]:
        return str(sizes[0])
    shown = ", ".join(map(str, sizes[:6])) + (", ..." if len(sizes) > 6 else "")
    return f"{len(sizes)} groups: {shown}"


def outside(report: Any) -> float:
    """The share of an ingest's time spent outside the encoder."""
    return 1 - report.encode_seconds / report.total_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=EXAMPLES)
    parser.add_argument("--generate", type=int, metavar="N", help="ingest N generated zh/en documents instead")
    parser.add_argument("--pdfs", type=int, default=0, metavar="N",
                        help="with --generate: N more documents, PDFs of --pdf-mb each, mostly an image")
    parser.add_argument("--pdf-mb", type=float, default=5.0)
    parser.add_argument("--model", help="a bge-m3 model directory (default: a tiny model built here)")
    parser.add_argument("--full-size", action="store_true", help="bge-m3's architecture with random weights")
    parser.add_argument("--copies", type=int, default=1, help="ingest N copies of the folder (more data)")
    parser.add_argument("--rounds", type=int, default=1, help="times each variant runs (they take turns)")
    parser.add_argument("--chunk-tokens", type=int, default=512)
    parser.add_argument("--groups", type=group_size, nargs="+", metavar="N",
                        help="ingest.documents_per_batch values to compare: files per group, or auto (unset: sized "
                             "by encoding time; the default)")
    parser.add_argument("--writes", choices=["both", "inline", "background"], default="both")
    parser.add_argument("--workers", type=int, nargs="+", metavar="N",
                        help="ingest.workers values to compare (processes reading and chunking ahead; default: "
                             "the configured one)")
    parser.add_argument("--file-hash-cache", choices=["on", "off"], nargs="+", default=["on"],
                        help="ingest.file_hash_cache values to compare (default: on, as configured)")
    parser.add_argument("--exact-max-chunks", type=int, nargs="+", metavar="N",
                        help="retrieval.exact_max_chunks values to compare (0: no exact index kept through the ingest, "
                             "no snapshot left; default: the configured one)")
    parser.add_argument("--encoding-cache", choices=["on", "off"], nargs="+", default=["off"],
                        help="embedding.cache values to compare (default: off; on: a fresh cache per variant and "
                             "round, so the first ingest pays for filling it)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the encoder runs")
    parser.add_argument("--warmup", action="store_true", help="one untimed ingest first (CUDA start-up, caches)")
    parser.add_argument("--warm-workers", action="store_true",
                        help="wait for the worker processes to start before each timed ingest (their start-up, "
                             "printed, is then left out of the totals)")
    parser.add_argument("--batch-size", type=int, help="embedding.batch_size (default: the configured one)")
    parser.add_argument("--batch-tokens", type=int, help="embedding.batch_tokens (default: the configured one)")
    args = parser.parse_args()
    writes = {k: v for k, v in WRITES.items() if args.writes == "both" or v is None or k.startswith(args.writes)}
    groups = args.groups or [None]
    workers = args.workers or [None]
    caches = args.file_hash_cache if HASH_CACHE else ["off"]
    encodings = args.encoding_cache
    budgets = args.exact_max_chunks or [None]
    variants: dict[str, tuple[bool | None, int | None, int | None, bool, bool, int | None]] = {
        label + (f", {group or 'auto'}/group" if len(groups) > 1 else "")
        + (f", {n} workers" if len(workers) > 1 else "")
        + (f", hash cache {cache}" if len(caches) > 1 else "")
        + (f", encoding cache {encoding}" if len(encodings) > 1 else "")
        + (f", exact_max_chunks {budget}" if len(budgets) > 1 else ""):
        (background, group, n, cache == "on", encoding == "on", budget)
        for budget in budgets for encoding in encodings for cache in caches for n in workers for group in groups
        for label, background in writes.items()
    }

    work = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    try:
        model = args.model or str(build_bge_m3_like(work / "model", full_size=args.full_size, max_length=8192))
        data = work / "data"
        if args.generate:
            generate_corpus(data, args.generate)
            generate_pdfs(data / "pdfs", args.pdfs, args.pdf_mb)
        else:
            for i in range(args.copies):
                shutil.copytree(args.folder, data / f"copy-{i}")
        started = time.perf_counter()

        batching = {k: v for k, v in {"batch_size": args.batch_size, "batch_tokens": args.batch_tokens}.items() if v}

        def settings_for(db: Path, group: int | None = None, n: int | None = None, cache: bool = True,
                         budget: int | None = None) -> Any:
            ingest = {**({"documents_per_batch": group} if group else {}), **({"workers": n} if n is not None else {}),
                      **({} if cache or not HASH_CACHE else {"file_hash_cache": False})}
            return load_settings(
                embedding={"model": model, "device": args.device, **batching}, milvus={"uri": str(db)},
                kb={"name": "bench"}, app={"data_dir": str(db.with_suffix(".app"))},
                chunking={"chunk_tokens": args.chunk_tokens, "overlap_tokens": min(64, args.chunk_tokens // 8)},
                **({"ingest": ingest} if ingest else {}),
                **({"retrieval": {"exact_max_chunks": budget}} if budget is not None else {}),
            )

        settings = settings_for(work / "unused.db")
        encoder = load_encoder(settings.embedding)
        load_seconds = time.perf_counter() - started
        clock = StageClock()
        install_clock(clock)
        taken = record_group_sizes()
        label = args.model or ("bge-m3 architecture, random weights" if args.full_size else "tiny test model")
        source = f"{args.generate} generated zh/en documents" if args.generate else f"{args.folder} x {args.copies}"
        if args.generate and args.pdfs:
            source += f" and {args.pdfs} PDFs of {args.pdf_mb:g} MB"
        print(f"model: {label} on {args.device} (loaded in {load_seconds:.1f}s); {os.cpu_count()} cores; "
              f"folder: {source}")

        results: dict[str, list[dict[str, Any]]] = defaultdict(list)
        texts: list[str] = []
        if args.warmup:
            warm_settings = settings_for(work / "warmup.db")
            with MilvusStore(warm_settings.milvus) as store:
                warm = IngestPipeline(warm_settings, encoder, store).run([data])
            print(f"warm-up ingest (not counted): {warm.total_seconds:.1f}s", flush=True)
        for round_ in range(args.rounds):
            for number, (variant, (background, group, n, cache, encoding, budget)) in enumerate(variants.items()):
                run_settings = settings_for(work / f"milvus-{round_}-{number}.db", group, n, cache, budget)  # in turns
                run_encoder = CachedEncoder(encoder, EncodingCache(work / f"encodings-{round_}-{number}.sqlite")) \
                    if encoding else encoder
                clock.seconds.clear()
                with MilvusStore(run_settings.milvus) as store:
                    options: dict[str, Any] = {} if background is None else {"background_writes": background}
                    if HASH_CACHE:
                        options["data_dir"] = run_settings.app.data_dir
                    pipeline = IngestPipeline(run_settings, run_encoder, store, **options)
                    try:
                        if args.warm_workers and n:
                            waited = time.perf_counter()
                            pipeline.planner.wait_ready(120)
                            print(f"  workers started in {time.perf_counter() - waited:.1f}s (not counted)")
                        taken.clear()
                        gc.collect()  # not left to strike during the next variant's run
                        first = pipeline.run([data])
                        first_groups = list(taken)
                        stages = dict(clock.seconds)
                        encoded_before = run_encoder.texts_encoded
                        unload(str(Path(run_settings.milvus.uri).resolve()), "bench")  # as a new process: its snapshot
                        gc.collect()
                        second = pipeline.run([data])
                        reencoded = run_encoder.texts_encoded - encoded_before
                    finally:
                        getattr(pipeline, "close", lambda: None)()  # worker processes (ingest.workers), if any
                    if not texts:
                        base = store.open("bench")
                        texts = [row["text"] for doc_id in base.documents() for row in base.chunks(doc_id)]
                results[variant].append({"first": first, "second": second, "stages": stages, "reencoded": reencoded,
                                         "background": bool(background)})
                size = describe_groups(first_groups) if first_groups else run_settings.ingest.documents_per_batch
                print(f"round {round_ + 1}, {variant} ({size} files per group): first ingest "
                      f"{first.total_seconds:.1f}s, re-ingest {second.total_seconds:.2f}s", flush=True)

        first = results[next(iter(variants))][0]["first"]
        files = sum(1 for f in first.files if f.outcome != "failed")
        print(f"\n{files} files, {first.added} documents, {first.chunks_written} chunks, "
              f"{first.tokens_encoded:,} tokens; best of {args.rounds} round(s) per variant")
        best = {v: min(runs, key=lambda r: r["first"].total_seconds) for v, runs in results.items()}
        for variant, run in best.items():  # the fastest re-ingest of the rounds beside the fastest first ingest
            run["fastest second"] = min(r["second"].total_seconds for r in results[variant])
        width = max(32, *(len(v) + 2 for v in variants))
        print(f"\n{'stage (first ingest)':<24}" + "".join(f"{v:>{width}}" for v in variants))
        for stage in [*STAGES, "other"]:
            cells = []
            for run in best.values():
                total = run["first"].total_seconds
                seconds = run["first"].encode_seconds if stage == "encoder" else run["stages"].get(stage, 0.0)
                if stage == "other":
                    named = sum(run["stages"].get(s, 0.0) for s in STAGES if s not in ("encoder", "writes"))
                    seconds = total - run["first"].encode_seconds - named - (
                        0.0 if run["background"] else run["stages"].get("writes", 0.0))
                cells.append(f"{seconds:9.2f}s {100 * seconds / total:5.1f}%")
            print(f"{stage:<24}" + "".join(f"{c:>{width}}" for c in cells))
        for name, pick in [
            ("total", lambda r: f"{r['first'].total_seconds:9.2f}s"),
            ("outside the encoder", lambda r: f"{100 * outside(r['first']):5.1f}%"),
            ("  in seconds", lambda r: f"{r['first'].total_seconds - r['first'].encode_seconds:9.2f}s"),
            ("encoder tokens/s", lambda r: f"{r['first'].tokens_per_second:,.0f}"),
            ("re-ingest (unchanged)", lambda r: f"{r['fastest second']:.3f}s"),
            ("first / re-ingest", lambda r: f"{r['first'].total_seconds / r['fastest second']:.0f}x"),
            ("texts re-encoded", lambda r: str(r["reencoded"])),
            ("files not read again", lambda r: str(getattr(r["second"], "recognised_files", 0))),
        ]:
            print(f"{name:<24}" + "".join(f"{pick(run):>{width}}" for run in best.values()))
        base = next(iter(variants))
        for variant in list(variants)[1:]:
            ratios = [b["first"].total_seconds / i["first"].total_seconds
                      for b, i in zip(results[variant], results[base], strict=True)]
            print(f"\n{variant} / {base}, first ingest total: {statistics.median(ratios):.3f} (median of "
                  f"{len(ratios)} round(s): {', '.join(f'{r:.3f}' for r in ratios)})")
            ratios = [b["second"].total_seconds / i["second"].total_seconds
                      for b, i in zip(results[variant], results[base], strict=True)]
            print(f"{variant} / {base}, re-ingest: {statistics.median(ratios):.3f} (median of "
                  f"{len(ratios)} round(s): {', '.join(f'{r:.3f}' for r in ratios)})")

        started = time.perf_counter()
        encoder.encode(texts)  # the same chunks through the encoder alone: the floor an ingest can reach
        pure_seconds = time.perf_counter() - started
        fastest = min(run["first"].total_seconds for run in best.values())
        print(f"encoder alone on the same {len(texts)} chunks: {pure_seconds:.2f}s; the fastest ingest took "
              f"{100 * (fastest - pure_seconds) / pure_seconds:.1f}% longer")
        if first.failed:
            print(f"failed files: {len(first.failed)} (e.g. {first.failed[0].source}: {first.failed[0].reason})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
