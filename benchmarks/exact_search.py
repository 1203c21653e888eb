"""Embedded hybrid retrieval at 100k x 1024-d: the in-process exact search against Milvus' own searches, and the
recall of Milvus' HNSW dense search for each ``ef``.

A synthetic collection (random normalised 1024-d dense vectors, ~80 sparse tokens per chunk drawn from a Zipf-like
distribution over bge-m3's 250,002-token vocabulary, so common tokens have long posting lists) is written once to
an embedded milvus-lite database under ``--cache`` and reused by later runs. Queries are made from random chunks
(dense: the chunk's vector plus noise, cosine about 0.7; sparse: 12 of its tokens plus 5 others) and given to the
retriever already encoded, so no time goes into encoding. First the exact index is read from Milvus (an earlier
run's snapshot deleted), then loaded from the snapshot that read wrote, as a new process would
(rag.store.exact_snapshot). For each query, in turn:

- ``exact``: ``HybridRetriever.search`` with the in-process exact search (``retrieval.exact_max_chunks``), text and
  title read from Milvus once per search for the chunks returned;
- ``exact_per_list``: the same, but reading text and title for every candidate of each list, once per list (how
  the exact search did it before);
- ``milvus``: the same with ``exact_max_chunks: 0``, i.e. Milvus' dense and sparse searches (``search_params``);
- ``hybrid_search``: Milvus' own ``hybrid_search`` with ``WeightedRanker(1.0, 0.3)`` (no exact scores).

Then the exact candidate lists are compared with a brute-force ranking computed here from the generated vectors
(float64), and Milvus' dense top ``top_k x candidate_factor`` with each ``--efs`` value against the exact one.

    .venv/bin/python benchmarks/exact_search.py                       # 100k chunks, 35 queries
    .venv/bin/python benchmarks/exact_search.py --size 10000 --queries 20
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
from pymilvus import AnnSearchRequest, MilvusClient, WeightedRanker
from scipy import sparse as sp

from rag.config import MilvusSettings, RetrievalSettings
from rag.encoder.base import EncodedBatch, Encoder
from rag.retrieval import HybridRetriever
from rag.retrieval.filters import SearchFilters
from rag.retrieval.retriever import OUTPUT_FIELDS
from rag.store import ChunkRecord, KnowledgeBase, MilvusStore, ModelInfo, exact_snapshot
from rag.store.exact_search import ExactSearch
from rag.store.exact_snapshot import snapshot_path

VOCAB = 250_002
TOKENS = 80
BATCH = 5000
NAME = "bench"


class Generated:
    """The synthetic chunks, batch by batch, the same on every run (seeded per batch)."""

    def __init__(self, size: int, dim: int, seed: int = 7) -> None:
        self.size, self.dim, self.seed = size, dim, seed
        rng = np.random.default_rng(seed)
        ranks = np.arange(VOCAB - 5) + 10.0
        self.cdf = np.cumsum(1.0 / ranks)
        self.cdf /= self.cdf[-1]
        self.tokens = rng.permutation(VOCAB - 5) + 5  # the most frequent token is a random one

    def draw_tokens(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return self.tokens[np.minimum(np.searchsorted(self.cdf, rng.random(shape)), len(self.tokens) - 1)]

    def batches(self) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """(first chunk number, dense (n, dim) float32, token ids (n, TOKENS), weights (n, TOKENS) float32)."""
        for start in range(0, self.size, BATCH):
            n = min(BATCH, self.size - start)
            rng = np.random.default_rng([self.seed, start])
            dense = rng.standard_normal((n, self.dim)).astype(np.float32)
            dense /= np.linalg.norm(dense, axis=1, keepdims=True)
            yield start, dense, self.draw_tokens(rng, (n, TOKENS)), (rng.random((n, TOKENS)) * 0.3).astype(np.float32)


def chunk_id(number: int) -> str:
    return f"c{number:08d}"


def sparse_of(tokens: np.ndarray, weights: np.ndarray) -> dict[int, float]:
    out: dict[int, float] = {}
    for t, w in zip(tokens.tolist(), weights.tolist(), strict=True):
        out[t] = w  # a token drawn twice keeps one weight, as a dict does
    return out


def build(store: MilvusStore, data: Generated, model: ModelInfo) -> float:
    """Write the collection unless the cache holds it whole; the seconds it took (0 when cached)."""
    if store.exists(NAME) and store.open(NAME, model).count() == data.size:
        return 0.0
    if store.exists(NAME):
        store.drop(NAME)
    started = time.perf_counter()
    kb = store.open(NAME, model, create=True)
    for start, dense, tokens, weights in data.batches():
        kb.upsert(ChunkRecord(
            id=chunk_id(start + i), doc_id=f"doc{(start + i) // 20:06d}", source=f"docs/doc{(start + i) // 20:06d}.md",
            chunk_index=(start + i) % 20, text=f"synthetic chunk {start + i}", title="synthetic",
            metadata={"file_type": "md"}, dense=dense[i].tolist(), sparse=sparse_of(tokens[i], weights[i]),
        ) for i in range(len(dense)))
        print(f"  wrote {start + len(dense):,} chunks, {time.perf_counter() - started:.0f} s", flush=True)
    kb.flush()
    return time.perf_counter() - started


class TokenIds:
    """What the retriever asks of a tokenizer to name matched terms: here a token is its id."""

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(f"#{i}" for i in ids)


class PreparedQueries(Encoder):
    """An encoder that answers the benchmark's query texts with vectors made beforehand (no model time)."""

    backend = "prepared"
    supports_sparse = True

    def __init__(self, model: ModelInfo, queries: dict[str, tuple[np.ndarray, dict[int, float]]]) -> None:
        super().__init__()
        self.model_name, self.fingerprint, self.dim = model.name, model.fingerprint, model.dim
        self.max_length, self.tokenizer, self.device = 512, TokenIds(), "cpu"
        self.queries = queries

    def encode(self, texts: Sequence[str], *, colbert: bool = False, on_batch: object = None) -> EncodedBatch:
        dense = np.stack([self.queries[t][0] for t in texts]).astype(np.float32)
        return EncodedBatch(dense, [dict(self.queries[t][1]) for t in texts], None, [1] * len(texts))


def make_queries(data: Generated, count: int, seed: int = 11) -> tuple[dict[str, tuple[np.ndarray, dict[int, float]]],
                                                                      dict[str, str]]:
    """Queries made from random chunks: text -> (dense, sparse), and text -> the chunk it was made from."""
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(data.size, size=count, replace=False).tolist())
    queries, origin = {}, {}
    for start, dense, tokens, weights in data.batches():
        for number in (p for p in picks if start <= p < start + len(dense)):
            i = number - start
            noisy = dense[i] + rng.standard_normal(data.dim).astype(np.float32) / np.sqrt(data.dim)
            keep = rng.choice(TOKENS, size=12, replace=False)
            sparse = sparse_of(tokens[i][keep], weights[i][keep])
            sparse.update(sparse_of(data.draw_tokens(rng, (5,)), rng.random(5).astype(np.float32)))
            text = f"query {len(queries)} from {chunk_id(number)}"
            queries[text] = (noisy / np.linalg.norm(noisy), sparse)
            origin[text] = chunk_id(number)
    return queries, origin


def brute_force(data: Generated, queries: list[tuple[np.ndarray, dict[int, float]]], limit: int
                ) -> list[tuple[list[str], list[str]]]:
    """Exact dense and sparse top ``limit`` ids per query (float64 over the generated vectors; ties by id)."""
    best: list[tuple[list[tuple[float, str]], list[tuple[float, str]]]] = [([], []) for _ in queries]
    q_dense = np.stack([q[0] for q in queries]).astype(np.float64)
    q_sparse = sp.csc_matrix(
        ([w for _, s in queries for w in s.values()],
         ([t for _, s in queries for t in s], [j for j, (_, s) in enumerate(queries) for _ in s])),
        shape=(VOCAB, len(queries)))
    for start, dense, tokens, weights in data.batches():
        rows = [sparse_of(tokens[i], weights[i]) for i in range(len(dense))]
        chunks = sp.csr_matrix(
            ([w for r in rows for w in r.values()], [t for r in rows for t in r],
             np.concatenate([[0], np.cumsum([len(r) for r in rows])])), shape=(len(rows), VOCAB))
        scores = {"dense": dense.astype(np.float64) @ q_dense.T, "sparse": (chunks @ q_sparse).toarray()}
        for j in range(len(queries)):
            for k, name in enumerate(("dense", "sparse")):
                column = scores[name][:, j]
                top = [i for i in np.argsort(-column)[: limit + 5] if name == "dense" or column[i] > 0]
                best[j][k].extend((-float(column[i]), chunk_id(start + int(i))) for i in top)
    return [([c for _, c in sorted(d)[:limit]], [c for _, c in sorted(s)[:limit]]) for d, s in best]


class TextPerList(HybridRetriever):
    """The exact search as it was first written: each candidate list read with text and title from Milvus."""

    def _milvus_search(self, field: str, vector: Any, limit: int, flt: SearchFilters,
                       cfg: RetrievalSettings) -> list[dict[str, Any]]:
        return self.knowledge_base.search(field, vector, limit, flt, OUTPUT_FIELDS,
                                          params=getattr(cfg.search_params, field),
                                          exact_max_chunks=cfg.exact_max_chunks)


def p50(values: list[float]) -> float:
    return float(np.percentile(values, 50))


def run(args: argparse.Namespace) -> None:
    logging.basicConfig(format="%(name)s: %(message)s")
    reads = logging.getLogger("rag.store.exact_search")  # why a background read failed, if one does (a handler of
    reads.setLevel(logging.DEBUG)  # its own: a library may have configured the root logger before basicConfig)
    reads.addHandler(logging.StreamHandler())
    reads.propagate = False
    data = Generated(args.size, args.dim)
    model = ModelInfo("synthetic", f"synthetic-{args.dim}", args.dim)
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    uri = str(cache / f"exact-{args.size}-{args.dim}.db")
    queries, origin = make_queries(data, args.queries + args.warmup)
    limit = args.top_k * args.candidate_factor
    print(f"{args.size:,} chunks x {args.dim}-d, ~{TOKENS} sparse tokens each; {args.queries} queries "
          f"(+{args.warmup} warm-up); hybrid, top_k {args.top_k}, {limit} candidates per search; "
          f"{os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; {uri}")
    with MilvusStore(MilvusSettings(uri=uri)) as store:
        built = build(store, data, model)
        print(f"collection: {'cached' if not built else f'written in {built:.0f} s'}")
        if args.recall_only:
            recall_per_ef(args, data, store.open(NAME, model), queries, origin, list(queries)[args.warmup:], limit)
            return
        encoder = PreparedQueries(model, queries)
        base = RetrievalSettings(top_k=args.top_k, candidate_factor=args.candidate_factor)
        exact = HybridRetriever.from_store(encoder, store, NAME, base, cache_size=0)
        per_list = TextPerList.from_store(encoder, store, NAME, base, cache_size=0)
        milvus = HybridRetriever.from_store(
            encoder, store, NAME, base.model_copy(update={"exact_max_chunks": 0}), cache_size=0)
        kb: KnowledgeBase = exact.knowledge_base
        snapshot = snapshot_path(uri, NAME)
        snapshot.unlink(missing_ok=True)  # an earlier run's: the read from Milvus is what is timed first
        started = time.perf_counter()
        for _ in range(3):  # a read that fails (see the log) is started again by the next search
            exact.search(next(iter(queries)))  # starts reading the index (in the background past 20k chunks)
            if kb.exact is not None and kb.exact.ready(timeout=3600):
                break
        else:
            raise SystemExit("the exact index could not be read")
        read_s = time.perf_counter() - started
        print(f"exact index read from Milvus: {read_s:.1f} s")
        fresh = ExactSearch(uri, NAME)  # as a process started now: no index yet, the snapshot on disk
        started = time.perf_counter()
        with fresh.lock:
            loaded = fresh.current(kb, model.dim, base.exact_max_chunks) is not None and fresh.loads == 1
        load_s = time.perf_counter() - started
        if loaded:
            print(f"exact index loaded from its snapshot ({snapshot.stat().st_size / 1e6:,.0f} MB), as a new process "
                  f"would: {load_s:.2f} s ({load_s / read_s:.3f}x the read from Milvus, which includes writing it)")
            assert fresh.index is not None
            started = time.perf_counter()
            exact_snapshot.write(fresh.index, snapshot, "benchmark").unlink()  # what an ingest's end adds
            print(f"exact index snapshot written (as an ingest that changed something ends): "
                  f"{time.perf_counter() - started:.2f} s")
        else:
            print("exact index snapshot: not written (see the log)")
        client = MilvusClient(uri=uri)
        ef = dict(base.search_params.dense)

        def hybrid_search(text: str) -> float:
            dense, sparse = queries[text]
            tick = time.perf_counter()
            client.hybrid_search(NAME, [
                AnnSearchRequest([dense.tolist()], "dense", {"metric_type": "IP", "params": ef}, limit),
                AnnSearchRequest([sparse], "sparse", {"metric_type": "IP"}, limit),
            ], WeightedRanker(1.0, 0.3), limit=args.top_k, output_fields=[f for f in OUTPUT_FIELDS if f != "id"])
            return (time.perf_counter() - tick) * 1000

        times: dict[str, list[float]] = {"exact": [], "exact_per_list": [], "milvus": [], "hybrid_search": []}
        steps: dict[str, list[float]] = {"store reads (dense + sparse + text)": [], "exact rescoring": []}
        texts = list(queries)
        for n, text in enumerate(texts):
            runs = {
                "exact": lambda t=text: exact.search(t).timings,
                "exact_per_list": lambda t=text: per_list.search(t).timings,
                "milvus": lambda t=text: milvus.search(t).timings,
                "hybrid_search": lambda t=text: hybrid_search(t),
            }
            order = list(runs) if n % 2 == 0 else list(reversed(runs))  # interleaved, alternating order
            for name in order:
                value = runs[name]()
                ms = value if isinstance(value, float) else value.total_ms - value.encode_ms
                if n >= args.warmup:
                    times[name].append(ms)
                    if name == "exact" and not isinstance(value, float):
                        steps["store reads (dense + sparse + text)"].append(value.milvus_ms)
                        steps["exact rescoring"].append(value.rescoring_ms)
        print(f"\n{'variant':<56} {'p50 ms':>8} {'p95 ms':>8} {'vs hybrid_search':>17}")
        ref = p50(times["hybrid_search"])
        labels = {"exact": "HybridRetriever.search, exact in-process",
                  "exact_per_list": "exact in-process, text read per list (before)",
                  "milvus": f"HybridRetriever.search, Milvus searches (ef {ef.get('ef')})",
                  "hybrid_search": "Milvus hybrid_search + WeightedRanker(1, 0.3)"}
        for name, values in times.items():
            print(f"{labels[name]:<56} {p50(values):>8.1f} {np.percentile(values, 95):>8.1f} "
                  f"{p50(values) / ref:>16.2f}x")
        print(f"exact / exact_per_list p50: {p50(times['exact']) / p50(times['exact_per_list']):.2f}x, "
              f"exact / milvus p50: {p50(times['exact']) / p50(times['milvus']):.2f}x "
              "(query encoding excluded from all)")
        print("exact variant's steps, p50: " + ", ".join(f"{k} {p50(v):.1f} ms" for k, v in steps.items()))

        timed = texts[args.warmup:]
        truth = recall_per_ef(args, data, kb, queries, origin, timed, limit)
        same = sum(
            [h["id"] for h in kb.search("dense", queries[t][0].tolist(), limit, "", ["id"],
                                        exact_max_chunks=base.exact_max_chunks)] == d
            and [h["id"] for h in kb.search("sparse", queries[t][1], limit, "", ["id"],
                                            exact_max_chunks=base.exact_max_chunks)] == s
            for t, (d, s) in zip(timed, truth, strict=True))
        print(f"\nexact candidate lists identical to brute force (dense and sparse, {limit} each): {same}/{len(timed)}")
        client.close()


def recall_per_ef(args: argparse.Namespace, data: Generated, kb: KnowledgeBase,
                  queries: dict[str, tuple[np.ndarray, dict[int, float]]], origin: dict[str, str], timed: list[str],
                  limit: int) -> list[tuple[list[str], list[str]]]:
    """Print how much of the exact dense top ``limit`` Milvus' HNSW search finds for each ef; the exact lists."""
    truth = brute_force(data, [queries[t] for t in timed], limit)
    print(f"\n{'dense ef':>8} {'recall of exact top ' + str(limit):>24} {'queries with all':>17} "
          f"{'source chunk found':>19} {'p50 ms':>8}")
    for value in args.efs:
        recalls, whole, found, ms = [], 0, 0, []
        for t, (d, _) in zip(timed, truth, strict=True):
            tick = time.perf_counter()
            hits = [h["id"] for h in kb.search("dense", queries[t][0].tolist(), limit, "", ["id"],
                                               params={"ef": value}, exact_max_chunks=0)]
            ms.append((time.perf_counter() - tick) * 1000)
            recalls.append(len(set(hits) & set(d)) / len(d))
            whole += set(hits) == set(d)
            found += origin[t] in hits
        print(f"{value:>8} {statistics.fmean(recalls):>24.3f} {whole / len(timed):>16.0%} "
              f"{found / len(timed):>18.0%} {p50(ms):>8.1f}")
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="chunks in the collection")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--queries", type=int, default=35, help="timed queries")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--candidate-factor", type=int, default=4)
    parser.add_argument("--efs", type=int, nargs="+", default=[64, 128, 256, 512, 1024], help="dense ef values")
    parser.add_argument("--recall-only", action="store_true", help="only the recall per ef (no timing, no index)")
    parser.add_argument("--cache", default="/tmp/ragscope-bench", help="folder of the reused embedded databases")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
