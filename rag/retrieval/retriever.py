"""Hybrid retrieval over a knowledge base, with every score computed exactly and explained.

How a query is answered: the query is encoded once with bge-m3 (dense vector + sparse token weights);
the store runs a dense search and a sparse search, each returning ``top_k x candidate_factor`` chunks (exactly,
in process, for an embedded knowledge base within ``exact_max_chunks``; else Milvus' index search); the
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
- ``rerank`` (0..1) and ``rerank_raw`` (unbounded), only with cross-encoder reranking (``rerank:
  cross-encoder``): a cross-encoder (bge-reranker-v2-m3) reads the query and the chunk together and gives a
  relevance logit (``rerank_raw``, equal to FlagReranker.compute_score) and its sigmoid (``rerank``, equal to
  compute_score(normalize=True)); the sigmoid is what fusion uses, ``rerank_rank`` is the order by it.
- ``hybrid``: sum(w_i x s_i) / sum(w_i) over the scores computed (dense, sparse, and colbert or rerank if
  reranked); weights default to FlagEmbedding's multilingual evaluation (dense 1.0, sparse 0.3, colbert 1.0;
  rerank 1.0). On the same scale as ``dense`` only roughly: ``sparse`` is not bounded by 1.
- ``dense_rank`` / ``sparse_rank``: 1-based position of the chunk in Milvus' dense / sparse result list,
  None when that search did not return it (the chunk still gets an exact score of that kind).
- ``rrf``: reciprocal rank fusion, sum over the lists holding the chunk of 1 / (rrf_k + rank). Depends only on
  ranks, not on score values; about 0.033 at most for two lists with k = 60. Comparable within one query only.
- ``final``: the score that orders the results and that ``min_score`` applies to. Which scores make it for
  each mode, fusion and reranking (and its formula) is the rule of :class:`rag.retrieval.fusion.ScoreFusion`,
  written only there; with reranking the reranked chunks come before the chunks outside the rerank set.

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
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from rag.config import Fusion, Mode, Rerank, RetrievalSettings, WeightSettings, with_overrides
from rag.encoder import Encoder
from rag.errors import InvalidInputError
from rag.rerank import load_reranker
from rag.rerank.candidates import rerank_candidates, rerank_head
from rag.retrieval.cache import QueryEncoding, QueryEncodingCache
from rag.retrieval.chunk_scores import Ranks, Scores
from rag.retrieval.filters import SearchFilters
from rag.retrieval.fusion import ScoreFusion
from rag.retrieval.provenance import Provenance
from rag.retrieval.results import RetrievalResult, Timings
from rag.retrieval.scores import colbert_score, dense_scores, lexical_score, matched_terms, resolve_weights
from rag.store import KnowledgeBase, MilvusStore, ModelInfo
from rag.store.schema import SCALAR_FIELDS, decode_sparse

OUTPUT_FIELDS = [*SCALAR_FIELDS, "dense", "sparse"]


class Candidate:
    """A chunk under consideration: its stored row, its sparse vector and its scores (ranks included)."""

    __slots__ = ("row", "scores", "sparse_vec")

    def __init__(self, row: dict[str, Any], ranks: Ranks) -> None:
        self.row = row
        self.sparse_vec = decode_sparse(row.get("sparse") or {})
        self.scores = Scores(ranks=ranks)


def _number_of_results(k: Any, top_k: Any) -> Any:
    """``k`` (LangChain's name) or ``top_k`` (this project's); both only when they agree."""
    if k is not None and top_k is not None and k != top_k:
        raise InvalidInputError(f"k ({k!r}) and top_k ({top_k!r}) both set the number of results; give one.")
    return k if k is not None else top_k


class HybridRetriever(BaseRetriever):
    """Dense + sparse (+ ColBERT) retrieval on one knowledge base; see the module docstring for the scores.

    ``invoke(query)`` returns the Documents; ``search(query, ...)`` returns a RetrievalResult with the
    settings used and the time spent, and takes per-call overrides. The number of results is ``k``
    (LangChain's name) or ``top_k`` (``settings.top_k``), in the constructor and per call
    (``invoke(query, k=3)``); any other unknown constructor argument is an error.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    encoder: Encoder
    knowledge_base: KnowledgeBase
    settings: RetrievalSettings = Field(default_factory=RetrievalSettings)
    filters: SearchFilters | None = None
    cache_size: int = 256
    _cache: QueryEncodingCache = PrivateAttr()
    _last_result: RetrievalResult | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _k_sets_top_k(cls, data: Any) -> Any:
        """``k=`` / ``top_k=`` in the constructor set ``settings.top_k`` (validated like the config)."""
        if not isinstance(data, dict) or ("k" not in data and "top_k" not in data):
            return data
        data = dict(data)
        number = _number_of_results(data.pop("k", None), data.pop("top_k", None))
        if number is not None:
            settings = data.get("settings")
            if settings is None:
                settings = RetrievalSettings()
            elif not isinstance(settings, RetrievalSettings):
                settings = RetrievalSettings.model_validate(settings)
            data["settings"] = with_overrides(settings, top_k=number)
        return data

    def model_post_init(self, context: Any, /) -> None:
        self._cache = QueryEncodingCache(self.encoder, self.cache_size)

    @classmethod
    def from_store(
        cls, encoder: Encoder, store: MilvusStore, kb: str, settings: RetrievalSettings, **kwargs: Any
    ) -> HybridRetriever:
        """Open knowledge base ``kb``, checking that ``encoder`` is the model that built it."""
        return cls(encoder=encoder, knowledge_base=store.open(kb, ModelInfo.of(encoder)), settings=settings, **kwargs)

    @property
    def k(self) -> int:
        """The number of results a search returns unless told otherwise (``settings.top_k``)."""
        return self.settings.top_k

    @property
    def query_cache(self) -> QueryEncodingCache:
        return self._cache

    @property
    def last_result(self) -> RetrievalResult | None:
        """The last search made through ``invoke`` (e.g. by an answering chain): its settings and timings."""
        return self._last_result

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        kwargs.pop("verbose", None)
        if "k" in kwargs:
            kwargs["top_k"] = _number_of_results(kwargs.pop("k"), kwargs.get("top_k"))
        self._last_result = self.search(query, **kwargs)
        return self._last_result.documents

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        """``ainvoke``: the same search with the same per-call options (``k=3``), run in a worker thread.

        BaseRetriever's default drops the per-call options; the search itself is synchronous (model, pymilvus).
        """
        return await run_in_executor(None, self._get_relevant_documents, query, run_manager=run_manager.get_sync(),
                                     **kwargs)

    def search(
        self,
        query: str,
        *,
        top_k: int | None = None,
        mode: Mode | None = None,
        fusion: Fusion | None = None,
        filters: SearchFilters | Mapping[str, Any] | None = None,
        min_score: float | None = None,
        colbert: bool | None = None,
        weights: WeightSettings | Mapping[str, float] | None = None,
        rerank: Rerank | None = None,
    ) -> RetrievalResult:
        """Search the knowledge base; arguments left as None take their value from the retrieval settings.

        ``colbert=True`` is ``rerank="colbert"`` (``colbert=False`` turns ColBERT reranking off). The overrides
        are checked by the same rules as the retrieval settings (InvalidInputError if wrong).
        """
        started = time.perf_counter()
        cfg, rule, flt = self.call_settings(query, top_k=top_k, mode=mode, fusion=fusion, filters=filters,
                                            min_score=min_score, colbert=colbert, weights=weights, rerank=rerank)
        result = RetrievalResult(
            query=query, kb=self.knowledge_base.name, mode=cfg.mode, fusion=cfg.fusion, top_k=cfg.top_k,
            min_score=cfg.min_score, colbert=cfg.colbert_rerank, weights=dict(rule.weights), filters=flt.as_dict(),
            formula=rule.formula(), rerank=cfg.rerank,
        )
        timings = result.timings

        tick = time.perf_counter()
        encoding, result.cached_query = self._cache.get(query, colbert=cfg.colbert_rerank)
        timings.encode_ms = _ms(tick)

        tick = time.perf_counter()
        dense_hits, sparse_hits = self.candidate_hits(encoding, cfg.candidate_limit, flt)
        timings.milvus_ms = _ms(tick)
        result.dense_hits, result.sparse_hits = len(dense_hits), len(sparse_hits)

        tick = time.perf_counter()
        pool = self.rank_hits(dense_hits, sparse_hits, encoding, rule)
        timings.rescoring_ms = _ms(tick)
        self.finish(result, pool, encoding, cfg, rule)
        timings.total_ms = _ms(started)
        return result

    def call_settings(
        self, query: str, *, top_k: int | None = None, mode: Mode | None = None, fusion: Fusion | None = None,
        filters: SearchFilters | Mapping[str, Any] | None = None, min_score: float | None = None,
        colbert: bool | None = None, weights: WeightSettings | Mapping[str, float] | None = None,
        rerank: Rerank | None = None,
    ) -> tuple[RetrievalSettings, ScoreFusion, SearchFilters]:
        """The settings, fusion rule and filters of one :meth:`search` call (its overrides over this retriever's),
        checked: InvalidInputError for an empty query, a wrong override or a mode the model cannot do."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("The query is empty: type a question or a few words to search for.")
        overrides = {name: value for name, value in (
            ("top_k", top_k), ("mode", mode), ("fusion", fusion), ("min_score", min_score), ("colbert_rerank", colbert),
            ("weights", None if weights is None else resolve_weights(weights)), ("rerank", rerank),
        ) if value is not None}
        cfg = with_overrides(self.settings, **overrides) if overrides else self.settings
        rule = ScoreFusion.from_settings(cfg)
        flt = SearchFilters.coerce(filters if filters is not None else self.filters)
        if cfg.mode == "sparse" and not getattr(self.encoder, "supports_sparse", True):
            raise InvalidInputError(
                f"mode sparse needs sparse (lexical) weights, which the embedding model {self.encoder.model_name!r} "
                "does not produce (it is dense-only); use mode dense or hybrid, or embedding.backend: bge-m3."
            )
        return cfg, rule, flt

    def candidate_hits(
        self, encoding: QueryEncoding, limit: int, filters: SearchFilters
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """This knowledge base's dense and sparse candidate lists for an encoded query: at most ``limit`` rows each,
        best first, among the chunks ``filters`` keep; what :meth:`rank_hits` takes. From the store: exact in
        process for an embedded knowledge base within ``exact_max_chunks`` (rows with what its index holds: ids,
        vectors, source, metadata; :meth:`finish` reads text, title and chunk_index for the chunks it returns),
        else Milvus' search with ``search_params`` (this retriever's settings; rows with :data:`OUTPUT_FIELDS`)."""
        filters.expression()  # a bad filter is an error before any search
        cfg = self.settings
        # The two searches run at the same time: Milvus works on both while this thread waits. A query without
        # any sparse weight (e.g. only unknown tokens) has no sparse search.
        sparse_future = None
        if encoding.sparse:
            sparse_future = _pool_executor().submit(self._milvus_search, "sparse", encoding.sparse, limit, filters, cfg)
        dense_hits = self._milvus_search("dense", encoding.dense.tolist(), limit, filters, cfg)
        sparse_hits = sparse_future.result() if sparse_future is not None else []
        return dense_hits, sparse_hits

    def finish(self, result: RetrievalResult, pool: list[Candidate], encoding: QueryEncoding,
               cfg: RetrievalSettings, rule: ScoreFusion, stores: Mapping[str, KnowledgeBase] | None = None) -> None:
        """The end of a search on a ranked pool (:meth:`rank_hits`): rerank its head as ``cfg.rerank`` says, keep
        ``final >= min_score``, cut to ``top_k`` and put the Documents, counts and timings into ``result``.

        The chunks reranked and returned get the stored fields their rows lack (text, title, ...) from their
        knowledge base, in one read each: ``stores`` by name for rows that carry a ``kb``, else this one's."""
        timings = result.timings
        if cfg.rerank != "none" and pool:
            head = cfg.rerank_candidates
            pool = self._stored(pool[:head], stores, timings) + pool[head:]
            tick = time.perf_counter()
            if cfg.colbert_rerank:
                pool = self._rerank(pool, encoding, rule, cfg.rerank_candidates)
            else:
                pool = rerank_candidates(load_reranker(cfg.reranker), result.query, pool, rule, cfg.rerank_candidates,
                                         _order)
            timings.rerank_ms = _ms(tick)

        tick = time.perf_counter()
        floor = cfg.min_score
        kept = [c for c in pool if floor <= 0 or c.scores.final >= floor]
        result.candidates = len(pool)
        result.below_min_score = len(pool) - len(kept)
        timings.rescoring_ms += _ms(tick)
        shown = self._stored(kept[: cfg.top_k], stores, timings)
        tick = time.perf_counter()
        result.documents = [self._document(c, rank, encoding) for rank, c in enumerate(shown, start=1)]
        timings.rescoring_ms += _ms(tick)

    @staticmethod
    def rank_hits(dense_hits: list[dict[str, Any]], sparse_hits: list[dict[str, Any]], encoding: QueryEncoding,
                  rule: ScoreFusion) -> list[Candidate]:
        """Score Milvus hits exactly with ``rule`` and order them as a search does, before ColBERT, min_score, top_k.

        ``dense_hits`` / ``sparse_hits``: Milvus' lists, best first, rows with :data:`OUTPUT_FIELDS`. The lists
        ``rule.mode`` uses are pooled; each chunk gets its 1-based place in both lists (what rrf uses), its exact
        dense and sparse scores from its stored vectors, and hybrid, rrf and final by ``rule``; the pool is sorted
        by final, ties by dense, then by id. :meth:`search` ranks its candidates with it; given longer lists, it
        gives the order a search with that many candidates would. A row may carry ``kb``, the knowledge base it
        comes from (lists of several merged): chunks are then told apart by kb and id, and documents name that kb.
        """
        pool = HybridRetriever._pool(rule.mode, dense_hits, sparse_hits)
        HybridRetriever._score(pool, encoding, rule)
        pool.sort(key=_order)
        return pool

    # -- steps --------------------------------------------------------------------------------------

    def _milvus_search(self, field: str, vector: Any, limit: int, flt: SearchFilters,
                       cfg: RetrievalSettings) -> list[dict[str, Any]]:
        """One candidate list, from the store: exact in-process for an embedded knowledge base within
        ``exact_max_chunks``, else Milvus' search with ``search_params``."""
        return self.knowledge_base.search(field, vector, limit, flt, OUTPUT_FIELDS,
                                          params=getattr(cfg.search_params, field),
                                          exact_max_chunks=cfg.exact_max_chunks, lazy=True)

    def _stored(self, chosen: list[Candidate], stores: Mapping[str, KnowledgeBase] | None,
                timings: Timings) -> list[Candidate]:
        """``chosen`` with every field of :data:`OUTPUT_FIELDS` read from their knowledge bases where their rows
        lack one (one store read per knowledge base; time counted as Milvus'); chunks deleted meanwhile left out."""
        tick = time.perf_counter()
        groups: dict[str, list[dict[str, Any]]] = {}
        for candidate in chosen:
            if any(name not in candidate.row for name in OUTPUT_FIELDS):
                groups.setdefault(candidate.row.get("kb") or "", []).append(candidate.row)
        for name, rows in groups.items():
            kb = (stores or {}).get(name, self.knowledge_base)
            kb.fill(rows, [f for f in OUTPUT_FIELDS if f not in ("dense", "sparse")])
        if groups:
            timings.milvus_ms += _ms(tick)
        return [c for c in chosen if all(name in c.row for name in OUTPUT_FIELDS)]

    @staticmethod
    def _pool(mode: str, dense_hits: list[dict[str, Any]], sparse_hits: list[dict[str, Any]]) -> list[Candidate]:
        """The candidates of the searches ``mode`` uses, each with its rank in both lists (None if absent)."""
        dense_ranks = {_key(row): rank for rank, row in enumerate(dense_hits, start=1)}
        sparse_ranks = {_key(row): rank for rank, row in enumerate(sparse_hits, start=1)}
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        if mode in ("dense", "hybrid"):
            rows.update((_key(row), row) for row in dense_hits)
        if mode in ("sparse", "hybrid"):
            for row in sparse_hits:
                rows.setdefault(_key(row), row)
        return [Candidate(row, Ranks(dense=dense_ranks.get(key), sparse=sparse_ranks.get(key)))
                for key, row in rows.items()]

    @staticmethod
    def _score(pool: list[Candidate], q: QueryEncoding, rule: ScoreFusion) -> None:
        """Exact dense and sparse scores from the stored vectors; hybrid, rrf and final by the fusion rule."""
        if not pool:
            return
        dense = dense_scores(q.dense, np.asarray([c.row["dense"] for c in pool], np.float32))
        for candidate, value in zip(pool, dense.tolist(), strict=True):
            candidate.scores.dense = value
            candidate.scores.sparse = lexical_score(q.sparse, candidate.sparse_vec)
            rule.fuse(candidate.scores)

    def _rerank(self, pool: list[Candidate], q: QueryEncoding, rule: ScoreFusion, size: int) -> list[Candidate]:
        """ColBERT-score the best ``size`` candidates, reorder them; the rest keep their order after them."""
        def score(head: list[Candidate]) -> None:
            encoded = self.encoder.encode([c.row["text"] for c in head], colbert=True)
            query_vectors = q.colbert if q.colbert is not None else np.zeros((0, 1))
            for candidate, vecs in zip(head, encoded.colbert or [], strict=True):
                candidate.scores.colbert = colbert_score(query_vectors, vecs)

        return rerank_head(pool, size, rule, _order, score, "colbert")

    def _document(self, c: Candidate, rank: int, q: QueryEncoding) -> Document:
        row = c.row
        terms = matched_terms(q.sparse, c.sparse_vec, self.encoder.tokenizer)
        metadata = {
            "id": row["id"], **Provenance.from_row(row).to_metadata(), "rank": rank,
            "kb": row.get("kb") or self.knowledge_base.name,
            "scores": c.scores.to_metadata(), "matched_terms": terms, "metadata": dict(row.get("metadata") or {}),
        }
        return Document(page_content=row["text"], metadata=metadata, id=row["id"])


def _order(c: Candidate) -> tuple[float, float, str, str]:
    """A search's order: by final, best first; ties by dense, then by id (and knowledge base, when merged)."""
    return (-c.scores.final, -c.scores.dense, c.row["id"], c.row.get("kb") or "")


def _key(row: dict[str, Any]) -> tuple[str, str]:
    """What tells chunks apart in a pool: their knowledge base (when rows carry one) and id."""
    return (row.get("kb") or "", row["id"])


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
