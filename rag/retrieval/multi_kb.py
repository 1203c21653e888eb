"""One search over several knowledge bases built with the same embedding model, merged by ``final``.

How: the query is encoded once; each knowledge base gives its dense and sparse candidate lists
(:meth:`HybridRetriever.candidate_hits`, ``top_k x candidate_factor`` each, with the filters); the dense lists are
merged into one list of that length by dense score, the sparse lists likewise by sparse score, and the union is
ranked by :meth:`HybridRetriever.rank_hits`, then reranked, cut by ``min_score`` and ``top_k`` as for one knowledge
base (:meth:`HybridRetriever.finish`). Every document names the knowledge base it came from (``metadata["kb"]``).

What "comparable" means: the result is the one a single knowledge base holding all their chunks would give.
Dense, sparse, ColBERT, rerank and weighted hybrid scores are per chunk (same model, same formula), so they compare
across knowledge bases as they are. ``dense_rank``, ``sparse_rank`` and ``rrf`` are places in the merged lists,
not in each knowledge base's own, so an rrf result is not the merge of each knowledge base's rrf results (a chunk
ranked 1st in a small knowledge base may be 9th among all). Knowledge bases built with different models
(rag.store.ModelInfo) are refused: their scores cannot be compared.

Entry point: ``MultiKBRetriever.from_store(encoder, store, ["kb_a", "kb_b"], settings).search(query, top_k=5,
filters={...})``, with the same per-call options as :meth:`HybridRetriever.search`; ``invoke(query, k=3)`` as for
any LangChain retriever.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, PrivateAttr, model_validator

from rag.config import Fusion, Mode, Rerank, RetrievalSettings, WeightSettings, with_overrides
from rag.encoder import Encoder
from rag.errors import InvalidInputError, ModelMismatchError
from rag.retrieval.cache import QueryEncoding
from rag.retrieval.filters import SearchFilters
from rag.retrieval.results import RetrievalResult
from rag.retrieval.retriever import HybridRetriever
from rag.retrieval.scores import lexical_score
from rag.store import MilvusStore, ModelInfo
from rag.store.schema import decode_sparse

Row = dict[str, Any]
KB_SEPARATOR = "+"


class MultiKBRetriever(BaseRetriever):
    """Hybrid retrieval over several knowledge bases of one model; see the module docstring for the merge.

    ``retrievers``: one :class:`HybridRetriever` per knowledge base (their settings and filters are not used:
    this retriever's are). ``settings`` default to the first retriever's; ``k`` / ``top_k`` set the number of
    results, in the constructor and per call, as for HybridRetriever.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    retrievers: list[HybridRetriever]
    settings: RetrievalSettings | None = None
    filters: SearchFilters | None = None
    _last_result: RetrievalResult | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _k_sets_top_k(cls, data: Any) -> Any:
        if not isinstance(data, dict) or ("k" not in data and "top_k" not in data):
            return data
        data = dict(data)
        k, top_k = data.pop("k", None), data.pop("top_k", None)
        if k is not None and top_k is not None and k != top_k:
            raise InvalidInputError(f"k ({k!r}) and top_k ({top_k!r}) both set the number of results; give one.")
        number = k if k is not None else top_k
        if number is not None:
            settings = data.get("settings")
            if settings is None:
                retrievers = data.get("retrievers") or []
                settings = retrievers[0].settings if retrievers else RetrievalSettings()
            elif not isinstance(settings, RetrievalSettings):
                settings = RetrievalSettings.model_validate(settings)
            data["settings"] = with_overrides(settings, top_k=number)
        return data

    @model_validator(mode="after")
    def _same_model(self) -> MultiKBRetriever:
        if not self.retrievers:
            raise InvalidInputError("Name at least one knowledge base to search.")
        names = self.names
        if len(set(names)) != len(names):
            raise InvalidInputError(f"A knowledge base is named twice ({', '.join(names)}); name each once.")
        check_same_model({r.knowledge_base.name: r.knowledge_base.model for r in self.retrievers})
        check_same_model({r.knowledge_base.name: ModelInfo.of(r.encoder) for r in self.retrievers})
        if self.settings is None:
            self.settings = self.retrievers[0].settings
        return self

    @classmethod
    def from_store(
        cls, encoder: Encoder, store: MilvusStore, names: Sequence[str], settings: RetrievalSettings,
        **kwargs: Any,
    ) -> MultiKBRetriever:
        """Open knowledge bases ``names``: ModelMismatchError when they were built with different models, or with
        another model than ``encoder``; KnowledgeBaseNotFoundError for a name that does not exist."""
        names = list(dict.fromkeys(names))
        check_same_model({name: store.open(name).model for name in names})
        retrievers = [HybridRetriever.from_store(encoder, store, name, settings) for name in names]
        return cls(retrievers=retrievers, settings=settings, **kwargs)

    @property
    def names(self) -> list[str]:
        """The knowledge bases searched, in the order given."""
        return [r.knowledge_base.name for r in self.retrievers]

    @property
    def last_result(self) -> RetrievalResult | None:
        """The last search made through ``invoke`` (e.g. by an answering chain): its settings and timings."""
        return self._last_result

    @property
    def k(self) -> int:
        """The number of results a search returns unless told otherwise (``settings.top_k``)."""
        return self._settings.top_k

    @property
    def _settings(self) -> RetrievalSettings:
        return self.settings or self.retrievers[0].settings

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        kwargs.pop("verbose", None)
        if "k" in kwargs:
            k, top_k = kwargs.pop("k"), kwargs.get("top_k")
            if k is not None and top_k is not None and k != top_k:
                raise InvalidInputError(f"k ({k!r}) and top_k ({top_k!r}) both set the number of results; give one.")
            kwargs["top_k"] = k if k is not None else top_k
        self._last_result = self.search(query, **kwargs)
        return self._last_result.documents

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        """``ainvoke``: the same search with the same per-call options, run in a worker thread."""
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
        """Search every knowledge base and merge: the options are those of :meth:`HybridRetriever.search`.

        The result's ``kbs`` lists the knowledge bases, ``kb`` joins them with ``+``; each document's
        ``metadata["kb"]`` is the one it came from.
        """
        started = time.perf_counter()
        lead = self.retrievers[0].model_copy(update={"settings": self._settings, "filters": self.filters})
        cfg, rule, flt = lead.call_settings(query, top_k=top_k, mode=mode, fusion=fusion, filters=filters,
                                            min_score=min_score, colbert=colbert, weights=weights, rerank=rerank)
        names = self.names
        result = RetrievalResult(
            query=query, kb=KB_SEPARATOR.join(names), mode=cfg.mode, fusion=cfg.fusion, top_k=cfg.top_k,
            min_score=cfg.min_score, colbert=cfg.colbert_rerank, weights=dict(rule.weights), filters=flt.as_dict(),
            formula=rule.formula(), rerank=cfg.rerank, kbs=names,
        )
        timings = result.timings
        tick = time.perf_counter()
        encoding, result.cached_query = lead.query_cache.get(query, colbert=cfg.colbert_rerank)
        timings.encode_ms = _ms(tick)

        tick = time.perf_counter()
        dense_lists, sparse_lists = [], []
        for retriever in self.retrievers:
            dense_hits, sparse_hits = retriever.candidate_hits(encoding, cfg.candidate_limit, flt)
            name = retriever.knowledge_base.name
            dense_lists.append([{**row, "kb": name} for row in dense_hits])
            sparse_lists.append([{**row, "kb": name} for row in sparse_hits])
        timings.milvus_ms = _ms(tick)

        tick = time.perf_counter()
        dense = merge_lists(dense_lists, dense_of(encoding), cfg.candidate_limit)
        sparse = merge_lists(sparse_lists, sparse_of(encoding), cfg.candidate_limit)
        result.dense_hits, result.sparse_hits = len(dense), len(sparse)
        pool = HybridRetriever.rank_hits(dense, sparse, encoding, rule)
        timings.rescoring_ms = _ms(tick)
        lead.finish(result, pool, encoding, cfg, rule,
                    stores={r.knowledge_base.name: r.knowledge_base for r in self.retrievers})
        timings.total_ms = _ms(started)
        return result


def merge_lists(lists: Sequence[list[Row]], score: Callable[[Row], float], limit: int) -> list[Row]:
    """One candidate list from several, each best first: the ``limit`` best rows by ``score`` (the exact value of
    the metric Milvus ranked them by), each list's own order kept; ties go to the earlier list."""
    if len(lists) == 1:
        return lists[0][:limit]
    return list(heapq.merge(*lists, key=lambda row: -score(row)))[:limit]


def dense_of(encoding: QueryEncoding) -> Callable[[Row], float]:
    """A row's dense score (inner product of normalised vectors, what Milvus' dense list is ordered by)."""
    query = np.asarray(encoding.dense, np.float64)
    return lambda row: float(np.dot(query, np.asarray(row["dense"], np.float64)))


def sparse_of(encoding: QueryEncoding) -> Callable[[Row], float]:
    """A row's lexical score (what Milvus' sparse list is ordered by)."""
    return lambda row: lexical_score(encoding.sparse, decode_sparse(row.get("sparse") or {}))


def check_same_model(models: Mapping[str, ModelInfo]) -> None:
    """ModelMismatchError unless every knowledge base in ``models`` was built with the same model."""
    groups: dict[tuple[str, int], list[str]] = {}
    for name, model in models.items():
        groups.setdefault((model.fingerprint, model.dim), []).append(name)
    if len(groups) <= 1:
        return
    described = "; ".join(
        f"{', '.join(kbs)}: {models[kbs[0]].name!r} ({dim} dimensions, fingerprint {fingerprint})"
        for (fingerprint, dim), kbs in groups.items()
    )
    raise ModelMismatchError(
        f"These knowledge bases were built with different embedding models ({described}). Their scores cannot be "
        "compared, so they cannot be searched together: search them one at a time, or rebuild them with one model."
    )


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0
