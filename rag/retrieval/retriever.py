"""Hybrid retrieval over a knowledge base, with every score computed exactly and explained.

How a query is answered: the query is encoded once with bge-m3 (dense vector + sparse token weights);
Milvus runs a dense search and a sparse search, each returning ``top_k x candidate_factor`` chunks; the
chunks of the searches the mode uses (dense: the dense list, sparse: the sparse list, hybrid: both) are
rescored here from their stored vectors, ordered by the final score, filtered by ``min_score`` and cut to
``top_k``. Milvus' own (fused or approximate) numbers are only used to rank its lists, never reported.

What the scores mean (every returned chunk carries all of them in ``metadata["scores"]``):

- ``dense`` (-1..1): cosine similarity of the query's and the chunk's dense vectors, i.e. how close their
  meanings are, whatever the words. Same as FlagEmbedding's dense score. With bge-m3, unrelated texts
  usually score 0.3-0.5 and paraphrases 0.8+; the chunk's own text scores 1.0.
- ``sparse`` (0 and up, unbounded): the lexical matching score, the sum over the tokens the query and the
  chunk share of query weight x chunk weight (bge-m3 learns a weight per token). 0 means no shared word;
  ``matched_terms`` lists the shared tokens and what each contributed. Good for names, codes and numbers.
- ``colbert`` (-1..1, only with ColBERT reranking): late interaction; each query token is matched with its
  most similar chunk token and the similarities are averaged. Finer-grained than ``dense``.
- ``hybrid``: sum(w_i x s_i) / sum(w_i) over the scores computed (dense, sparse, and colbert if reranked);
  weights default to FlagEmbedding's multilingual evaluation (dense 1.0, sparse 0.3, colbert 1.0). On the
  same scale as ``dense`` only roughly: ``sparse`` is not bounded by 1.
- ``dense_rank`` / ``sparse_rank``: 1-based position of the chunk in Milvus' dense / sparse result list,
  None when that search did not return it (the chunk still gets an exact score of that kind).
- ``rrf``: reciprocal rank fusion, sum over the lists holding the chunk of 1 / (rrf_k + rank). Depends only on
  ranks, not on score values; about 0.033 at most for two lists with k = 60. Comparable within one query only.
- ``final``: the score that orders the results and that ``min_score`` applies to: ``dense`` in dense mode,
  ``sparse`` in sparse mode, ``hybrid`` (fusion weighted) or ``rrf`` (fusion rrf) in hybrid mode. With ColBERT
  reranking, the reranked chunks' final score also includes colbert (weighted: its weight joins the sum;
  rrf: the rank by colbert becomes a third list) and they come before the chunks outside the rerank set.

``min_score`` is inclusive: a chunk is kept when ``final >= min_score``; 0 (or less) keeps everything, and a
value above every score returns nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from rag.config import RetrievalSettings, WeightSettings
from rag.encoder import Encoder
from rag.errors import InvalidInputError
from rag.retrieval.cache import QueryEncoding, QueryEncodingCache
from rag.retrieval.filters import SearchFilters
from rag.retrieval.results import RetrievalResult
from rag.retrieval.scores import (
    colbert_score,
    dense_scores,
    hybrid_formula,
    lexical_score,
    matched_terms,
    resolve_weights,
    rrf_formula,
    rrf_score,
    weighted_hybrid,
)
from rag.store import KnowledgeBase, MilvusStore, ModelInfo
from rag.store.schema import SCALAR_FIELDS, decode_sparse

MODES = ("dense", "sparse", "hybrid")
FUSIONS = ("weighted", "rrf")
MAX_MILVUS_LIMIT = 16384
OUTPUT_FIELDS = [*SCALAR_FIELDS, "dense", "sparse"]


class _Candidate:
    """A chunk under consideration: its stored row, its ranks in the two lists and its scores."""

    __slots__ = ("colbert", "colbert_rank", "dense", "dense_rank", "final", "hybrid", "row", "rrf", "sparse",
                 "sparse_rank", "sparse_vec")

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.sparse_vec = decode_sparse(row.get("sparse") or {})
        self.dense_rank: int | None = None
        self.sparse_rank: int | None = None
        self.colbert_rank: int | None = None
        self.dense = 0.0
        self.sparse = 0.0
        self.colbert: float | None = None
        self.hybrid: float | None = None
        self.rrf = 0.0
        self.final = 0.0


def final_formula(mode: str, fusion: str, weights: Mapping[str, float], *, colbert: bool, rrf_k: int) -> str:
    """How ``final`` is computed for these settings, e.g. ``final = hybrid = (1.0 x dense + 0.3 x sparse) / 1.3``."""
    if mode == "hybrid" and fusion == "rrf":
        return "final = " + rrf_formula(rrf_k, ("dense", "sparse", "colbert") if colbert else ("dense", "sparse"))
    if mode == "hybrid":
        names = ("dense", "sparse", "colbert") if colbert else ("dense", "sparse")
        return "final = " + hybrid_formula(weights, names)
    if colbert:
        return "final = " + hybrid_formula(weights, (mode, "colbert"), name=f"{mode}+colbert")
    return f"final = {mode}"


class HybridRetriever(BaseRetriever):
    """Dense + sparse (+ ColBERT) retrieval on one knowledge base; see the module docstring for the scores.

    ``invoke(query)`` returns the Documents; ``search(query, ...)`` returns a RetrievalResult with the
    settings used and the time spent, and takes per-call overrides.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    encoder: Encoder
    knowledge_base: KnowledgeBase
    settings: RetrievalSettings = Field(default_factory=RetrievalSettings)
    filters: SearchFilters | None = None
    cache_size: int = 256
    _cache: QueryEncodingCache = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._cache = QueryEncodingCache(self.encoder, self.cache_size)

    @classmethod
    def from_store(
        cls, encoder: Encoder, store: MilvusStore, kb: str, settings: RetrievalSettings, **kwargs: Any
    ) -> HybridRetriever:
        """Open knowledge base ``kb``, checking that ``encoder`` is the model that built it."""
        return cls(encoder=encoder, knowledge_base=store.open(kb, ModelInfo.of(encoder)), settings=settings, **kwargs)

    @property
    def query_cache(self) -> QueryEncodingCache:
        return self._cache

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        kwargs.pop("verbose", None)
        return self.search(query, **kwargs).documents

    def search(
        self,
        query: str,
        *,
        top_k: int | None = None,
        mode: str | None = None,
        fusion: str | None = None,
        filters: SearchFilters | Mapping[str, Any] | None = None,
        min_score: float | None = None,
        colbert: bool | None = None,
        weights: WeightSettings | Mapping[str, float] | None = None,
    ) -> RetrievalResult:
        """Search the knowledge base; arguments left as None take their value from the retrieval settings."""
        started = time.perf_counter()
        cfg = self.settings
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("The query is empty: type a question or a few words to search for.")
        top_k = cfg.top_k if top_k is None else top_k
        mode = mode or cfg.mode
        fusion = fusion or cfg.fusion
        use_colbert = cfg.colbert_rerank if colbert is None else colbert
        floor = cfg.min_score if min_score is None else float(min_score)
        w = resolve_weights(cfg.weights if weights is None else weights)
        flt = SearchFilters.coerce(filters if filters is not None else self.filters)
        _check(top_k, mode, fusion, w, use_colbert)
        if mode == "sparse" and not getattr(self.encoder, "supports_sparse", True):
            raise InvalidInputError(
                f"mode sparse needs sparse (lexical) weights, which the embedding model {self.encoder.model_name!r} "
                "does not produce (it is dense-only); use mode dense or hybrid, or embedding.backend: bge-m3."
            )
        result = RetrievalResult(
            query=query, kb=self.knowledge_base.name, mode=mode, fusion=fusion, top_k=top_k, min_score=floor,
            colbert=use_colbert, weights=w, filters=flt.as_dict(),
            formula=final_formula(mode, fusion, w, colbert=use_colbert, rrf_k=cfg.rrf_k),
        )
        timings = result.timings

        tick = time.perf_counter()
        encoding, result.cached_query = self._cache.get(query, colbert=use_colbert)
        timings.encode_ms = _ms(tick)

        tick = time.perf_counter()
        expr = flt.expression()
        limit = min(top_k * cfg.candidate_factor, MAX_MILVUS_LIMIT)
        # The two searches run at the same time: Milvus works on both while this thread waits. A query without
        # any sparse weight (e.g. only unknown tokens) has no sparse search.
        sparse_future = None
        if encoding.sparse:
            sparse_future = _pool_executor().submit(self._milvus_search, "sparse", encoding.sparse, limit, expr)
        dense_hits = self._milvus_search("dense", encoding.dense.tolist(), limit, expr)
        sparse_hits = sparse_future.result() if sparse_future is not None else []
        timings.milvus_ms = _ms(tick)
        result.dense_hits, result.sparse_hits = len(dense_hits), len(sparse_hits)

        tick = time.perf_counter()
        pool = self._pool(mode, dense_hits, sparse_hits)
        self._score(pool, encoding, mode, fusion, w)
        pool.sort(key=_order)
        timings.rescoring_ms = _ms(tick)

        if use_colbert and pool:
            tick = time.perf_counter()
            pool = self._rerank(pool, encoding, mode, fusion, w)
            timings.rerank_ms = _ms(tick)

        tick = time.perf_counter()
        kept = [c for c in pool if floor <= 0 or c.final >= floor]
        result.candidates = len(pool)
        result.below_min_score = len(pool) - len(kept)
        result.documents = [
            self._document(c, rank, encoding, mode, fusion, w) for rank, c in enumerate(kept[:top_k], start=1)
        ]
        timings.rescoring_ms += _ms(tick)
        timings.total_ms = _ms(started)
        return result

    # -- steps --------------------------------------------------------------------------------------

    def _milvus_search(self, field: str, vector: Any, limit: int, expr: str) -> list[dict[str, Any]]:
        return self.knowledge_base.search(field, vector, limit, expr, OUTPUT_FIELDS)

    @staticmethod
    def _pool(mode: str, dense_hits: list[dict[str, Any]], sparse_hits: list[dict[str, Any]]) -> list[_Candidate]:
        """The candidates of the searches ``mode`` uses, each with its rank in both lists (None if absent)."""
        dense_ranks = {row["id"]: rank for rank, row in enumerate(dense_hits, start=1)}
        sparse_ranks = {row["id"]: rank for rank, row in enumerate(sparse_hits, start=1)}
        rows: dict[str, dict[str, Any]] = {}
        if mode in ("dense", "hybrid"):
            rows.update((row["id"], row) for row in dense_hits)
        if mode in ("sparse", "hybrid"):
            for row in sparse_hits:
                rows.setdefault(row["id"], row)
        pool = []
        for chunk_id, row in rows.items():
            candidate = _Candidate(row)
            candidate.dense_rank, candidate.sparse_rank = dense_ranks.get(chunk_id), sparse_ranks.get(chunk_id)
            pool.append(candidate)
        return pool

    def _score(self, pool: list[_Candidate], q: QueryEncoding, mode: str, fusion: str, w: dict[str, float]) -> None:
        """Exact dense, sparse, hybrid and rrf scores from the stored vectors, and the final score before reranking."""
        if not pool:
            return
        dense = dense_scores(q.dense, np.asarray([c.row["dense"] for c in pool], np.float32))
        k = self.settings.rrf_k
        for candidate, value in zip(pool, dense.tolist(), strict=True):
            candidate.dense = value
            candidate.sparse = lexical_score(q.sparse, candidate.sparse_vec)
            candidate.hybrid = weighted_hybrid({"dense": candidate.dense, "sparse": candidate.sparse}, w)
            candidate.rrf = rrf_score((candidate.dense_rank, candidate.sparse_rank), k)
            candidate.final = _final(candidate, mode, fusion, w)

    def _rerank(
        self, pool: list[_Candidate], q: QueryEncoding, mode: str, fusion: str, w: dict[str, float]
    ) -> list[_Candidate]:
        """ColBERT-score the best ``rerank_candidates``, reorder them; the rest keep their order after them."""
        head, tail = pool[: self.settings.rerank_candidates], pool[self.settings.rerank_candidates :]
        encoded = self.encoder.encode([c.row["text"] for c in head], colbert=True)
        for candidate, vecs in zip(head, encoded.colbert or [], strict=True):
            candidate.colbert = colbert_score(q.colbert if q.colbert is not None else np.zeros((0, 1)), vecs)
        by_colbert = sorted(head, key=lambda c: (-(c.colbert or 0.0), c.row["id"]))
        for rank, candidate in enumerate(by_colbert, start=1):
            candidate.colbert_rank = rank
        k = self.settings.rrf_k
        for candidate in head:
            candidate.hybrid = weighted_hybrid(
                {"dense": candidate.dense, "sparse": candidate.sparse, "colbert": candidate.colbert}, w
            )
            candidate.rrf = rrf_score((candidate.dense_rank, candidate.sparse_rank, candidate.colbert_rank), k)
            candidate.final = _final(candidate, mode, fusion, w)
        head.sort(key=_order)
        return head + tail

    def _document(
        self, c: _Candidate, rank: int, q: QueryEncoding, mode: str, fusion: str, w: dict[str, float]
    ) -> Document:
        row = c.row
        stored = dict(row.get("metadata") or {})
        scores = {
            "dense": c.dense, "sparse": c.sparse, "colbert": c.colbert, "hybrid": c.hybrid, "rrf": c.rrf,
            "dense_rank": c.dense_rank, "sparse_rank": c.sparse_rank, "colbert_rank": c.colbert_rank,
            "final": c.final, "mode": mode, "fusion": fusion, "weights": dict(w),
        }
        metadata = {
            "id": row["id"], "doc_id": row["doc_id"], "source": row["source"], "chunk_index": row["chunk_index"],
            "title": row.get("title", ""), "page": stored.get("page"), "heading": stored.get("heading"),
            "rank": rank, "kb": self.knowledge_base.name, "scores": scores,
            "matched_terms": matched_terms(q.sparse, c.sparse_vec, self.encoder.tokenizer), "metadata": stored,
        }
        return Document(page_content=row["text"], metadata=metadata, id=row["id"])


def _final(c: _Candidate, mode: str, fusion: str, w: dict[str, float]) -> float:
    """The score that orders results: see ``final`` in the module docstring."""
    if mode == "hybrid":
        value = c.rrf if fusion == "rrf" else c.hybrid
    elif c.colbert is None:
        value = c.dense if mode == "dense" else c.sparse
    else:
        value = weighted_hybrid({mode: c.dense if mode == "dense" else c.sparse, "colbert": c.colbert}, w)
    return float(value) if value is not None else 0.0  # None only when all weights are 0, refused by _check


def _order(c: _Candidate) -> tuple[float, float, str]:
    return (-c.final, -c.dense, c.row["id"])


def _check(top_k: int, mode: str, fusion: str, w: dict[str, float], colbert: bool) -> None:
    if not isinstance(top_k, int) or top_k < 1:
        raise InvalidInputError(f"top_k must be a whole number of 1 or more, got {top_k!r}.")
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    if fusion not in FUSIONS:
        raise InvalidInputError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}.")
    if mode == "hybrid" and fusion == "weighted":
        used = ["dense", "sparse", "colbert"] if colbert else ["dense", "sparse"]
    elif mode != "hybrid" and colbert:
        used = [mode, "colbert"]
    else:
        return
    if sum(w[name] for name in used) <= 0:
        raise InvalidInputError(
            f"the weights of {' and '.join(used)} are all 0, so the final score is undefined; give at least one "
            "a positive weight (retrieval.weights)."
        )


_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def _pool_executor() -> ThreadPoolExecutor:
    """A small shared thread pool for the sparse search that runs beside the dense one."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rag-search")
        return _EXECUTOR


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0
