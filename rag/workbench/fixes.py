"""The changes that would bring a missed chunk into a search's results, each checked by searching again with it.

A :class:`Fix` is never a guess: :class:`FixFinder` picks the candidate value from the chunk's scores and the
search's candidates (the same exact scores and order as :meth:`HybridRetriever.rank_hits`), then runs the real
search with it and records where the chunk lands (``retrieved_rank``, None when it still misses). What each cut
gets is described in :mod:`rag.workbench.explain`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from rag.config import MILVUS_MAX_LIMIT, with_overrides
from rag.retrieval.cache import QueryEncoding
from rag.retrieval.filters import SearchFilters
from rag.retrieval.fusion import ScoreFusion
from rag.retrieval.results import RetrievalResult
from rag.retrieval.retriever import Candidate, HybridRetriever
from rag.store.knowledge_base import quote

SPARSE_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.5, 2.0, 3.0, 5.0)
RRF_KS = (1, 2, 5, 10, 20, 30, 40, 60, 80, 100, 150, 200, 300, 500, 1000)
TOP_K_STEPS = 64  # top_k values tried after the chunk's rank among the candidates
MAX_CANDIDATE_FACTOR = 100  # RetrievalSettings.candidate_factor's upper bound


@dataclass
class Fix:
    """A change of one setting, and what re-running the retrieval with it gave (not a guess)."""

    setting: str
    value: Any
    retrieved_rank: int | None
    also: dict[str, Any] = field(default_factory=dict)  # other settings changed with it, e.g. {"fusion": "weighted"}

    @property
    def works(self) -> bool:
        return self.retrieved_rank is not None

    def describe(self) -> str:
        """The change as a user would type it, e.g. ``fusion = weighted, weights.sparse = 0.8``."""
        return ", ".join(f"{name} = {value}" for name, value in {**self.also, self.setting: self.value}.items())


def head_rows(candidate_limit: int, candidate_factor: int) -> int:
    """Rows of each Milvus list that finding fixes reads: the candidates, and the longest lists the top_k fix tries
    (it starts at the chunk's rank in the candidate pool, which holds at most both lists' candidates)."""
    return min(MILVUS_MAX_LIMIT, (2 * candidate_limit + TOP_K_STEPS) * candidate_factor)


class FixFinder:
    """Finds and checks the changes that would bring ``chunk_id`` into ``retriever``'s results for ``query``."""

    def __init__(self, retriever: HybridRetriever, query: str, chunk_id: str) -> None:
        self.retriever, self.query, self.chunk_id = retriever, query, chunk_id

    def candidate_factor(self, dense_position: int | None, sparse_position: int | None,
                         used: tuple[str, ...]) -> Fix:
        """The smallest candidate_factor that puts the chunk in a list the mode uses (``value`` None: none can)."""
        top_k = self.retriever.settings.top_k
        positions = [p for name, p in (("dense", dense_position), ("sparse", sparse_position)) if name in used and p]
        needed = math.ceil(min(positions) / top_k) if positions else None
        if needed is None or needed > MAX_CANDIDATE_FACTOR:
            return Fix("candidate_factor", None, None)
        return self.checked("candidate_factor", needed)

    def min_score(self, final: float) -> Fix:
        """``min_score`` at the chunk's final score, rounded down to 4 decimals."""
        return self.checked("min_score", math.floor(final * 10_000) / 10_000)

    def fusion(self, pool: list[Candidate], rule: ScoreFusion) -> list[Fix]:
        """Fusion changes that rank the chunk within top_k among the same candidates (which they do not change).

        Weighted hybrid: the nearest sparse weight. rrf: the weighted fusion (with the current weights, else with
        the sparse weight nearest them that fits) and the nearest rrf_k. Dense or sparse mode: none.
        """
        if self.retriever.settings.mode != "hybrid":
            return []
        top_k, fixes = self.retriever.settings.top_k, []
        if rule.kind == "weighted":
            weight = _sparse_weight_that_fits(pool, self.chunk_id, rule, top_k)
            if weight is not None:
                fixes.append(self.checked("weights.sparse", weight, weights={**rule.weights, "sparse": weight}))
            return fixes
        weighted = replace(rule, fusion="weighted")
        if _defined(weighted) and pool_rank(pool, self.chunk_id, weighted) <= top_k:
            fixes.append(self.checked("fusion", "weighted", fusion="weighted"))
        else:
            weight = _sparse_weight_that_fits(pool, self.chunk_id, weighted, top_k)
            if weight is not None:
                fix = self.checked("weights.sparse", weight, fusion="weighted",
                                   weights={**rule.weights, "sparse": weight})
                fixes.append(replace(fix, also={"fusion": "weighted"}))
        for rrf_k in sorted(RRF_KS, key=lambda k: (abs(k - rule.rrf_k), k)):
            if rrf_k != rule.rrf_k and pool_rank(pool, self.chunk_id, replace(rule, rrf_k=rrf_k)) <= top_k:
                fixes.append(self.checked("rrf_k", rrf_k))
                break
        return fixes

    def top_k(self, start: int, dense_hits: list[dict[str, Any]], sparse_hits: list[dict[str, Any]],
              q: QueryEncoding, rule: ScoreFusion) -> Fix:
        """The smallest top_k from ``start`` (the chunk's rank among the candidates) that ranks it within top_k.

        A larger top_k also fetches more candidates (``top_k x candidate_factor``), which can rank above it (and,
        with rrf, change the others' ranks), so each value is tried on the prefixes of Milvus' full lists
        (``dense_hits`` / ``sparse_hits``); ``start`` when none of the next TOP_K_STEPS values fits.
        """
        factor, found = self.retriever.settings.candidate_factor, start
        for top_k in range(start, min(start + TOP_K_STEPS, MILVUS_MAX_LIMIT + 1)):
            limit = min(top_k * factor, MILVUS_MAX_LIMIT)
            pool = HybridRetriever.rank_hits(dense_hits[:limit], sparse_hits[:limit], q, rule)
            if any(c.row["id"] == self.chunk_id for c in pool[:top_k]):
                found = top_k
                break
        return self.checked("top_k", found)

    def without_filters(self, names: list[str]) -> Fix:
        """The search filters less the conditions ``names`` (see :func:`dropping_filters`), checked."""
        kept = SearchFilters.coerce(self.retriever.filters).without(names)
        changed = HybridRetriever(encoder=self.retriever.encoder, knowledge_base=self.retriever.knowledge_base,
                                  settings=self.retriever.settings, filters=kept)
        return Fix("filters", kept.as_dict(), _rank_of(changed.search(self.query), self.chunk_id))

    def checked(self, setting: str, value: Any, **changes: Any) -> Fix:
        """``setting = value`` (or ``changes``) applied to the settings; where a search then puts the chunk."""
        r = self.retriever
        changed = HybridRetriever(encoder=r.encoder, knowledge_base=r.knowledge_base,
                                  settings=with_overrides(r.settings, **(changes or {setting: value})),
                                  filters=r.filters)
        return Fix(setting, value, _rank_of(changed.search(self.query), self.chunk_id))


def dropping_filters(retriever: HybridRetriever, chunk_id: str) -> list[tuple[str, str]]:
    """(name, expression) of each search filter condition that, alone, leaves the chunk out.

    Names are those of :meth:`SearchFilters.conditions`: ``source``, ``source_prefix``, ``file_types``, ``pages``,
    ``metadata.KEY``, ``fields.KEY``.
    """
    kb = retriever.knowledge_base
    return [(name, one.expression()) for name, one in SearchFilters.coerce(retriever.filters).conditions()
            if not kb.page(f"id == {quote(chunk_id)} and ({one.expression()})", ["id"], limit=1)]


def pool_rank(pool: list[Candidate], chunk_id: str, rule: ScoreFusion) -> int:
    """The chunk's place among the search's candidates under ``rule``, in the retriever's own order."""
    keys = {c.row["id"]: (-rule.final(c.scores), -c.scores.dense, c.row["id"]) for c in pool}
    return 1 + sum(1 for key in keys.values() if key < keys[chunk_id])


def _defined(rule: ScoreFusion) -> bool:
    """Whether a weighted ``final`` is defined: the weights it uses are not all 0."""
    return sum(rule.weights[name] for name in rule.used) > 0


def _sparse_weight_that_fits(pool: list[Candidate], chunk_id: str, rule: ScoreFusion, top_k: int) -> float | None:
    """The sparse weight nearest the current one that ranks the chunk within ``top_k`` among these candidates."""
    current = rule.weights["sparse"]
    for weight in sorted(SPARSE_WEIGHTS, key=lambda w: (abs(w - current), w)):
        changed = replace(rule, weights={**rule.weights, "sparse": weight})
        if _defined(changed) and pool_rank(pool, chunk_id, changed) <= top_k:
            return weight
    return None


def _rank_of(result: RetrievalResult, chunk_id: str) -> int | None:
    return next((d.metadata["rank"] for d in result.documents if d.metadata["id"] == chunk_id), None)
