"""A chunk's hybrid, rrf and final rank among all chunks of a knowledge base: exact, or an exact bound.

"Among all chunks" means as if the candidate lists were unlimited: every chunk Milvus' full lists return (the
dense list holds every chunk the search filters keep, the sparse list every chunk sharing a query token, each up
to Milvus' window of 16384) is scored exactly and fused by the search's own rule
(:meth:`rag.retrieval.retriever.HybridRetriever.rank_hits`), with its places in those full lists for rrf.

The lists come from the same store search as the retriever's (``KnowledgeBase.search``): for an embedded knowledge
base within ``retrieval.exact_max_chunks`` they are whole, every chunk's exact scores from the in-process index
(:meth:`FullListRanks.of_scores`, ``KnowledgeBase.exact_scores``), so every rank is exact at any depth; otherwise
Milvus' index search, up to its window.

This is where the chunk stands in the knowledge base, not what a search returns. A search fuses only its
``top_k x candidate_factor`` candidates: a chunk at final rank 3 here is still missed when it is outside the
candidate lists, and its rrf here (its places in the full lists) can differ from the search's ``scores.rrf`` (its
places in the cut lists, nothing for a list that did not return it), so its rrf and final ranks can too.

A rank is 1 + the number of chunks that score strictly higher; for ``final``, the number ahead of it in the
search's order (ties by dense, then by id). Past the window (a list of 16384 chunks), a chunk Milvus did not
return is bounded: its dense no higher than the last one returned, its sparse no higher than the last one returned
(0 when the sparse list is whole), its place in a list after the window. When such a bound could reach the chunk,
its rank is an exact bound instead, said as such: at least ``rank`` chunks score higher ("below rank N").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rag.config import MILVUS_MAX_LIMIT
from rag.retrieval.cache import QueryEncoding
from rag.retrieval.chunk_scores import Scores
from rag.retrieval.fusion import ScoreFusion
from rag.retrieval.retriever import HybridRetriever
from rag.retrieval.scores import weighted_hybrid
from rag.store.exact_index import ChunkScores

FLOAT_SLACK = 1e-6  # Milvus orders its window by its own float32 scores; exact rescoring may differ by this much
FUSED = ("hybrid", "rrf", "final")


@dataclass
class ListRank:
    """The chunk's place for one score among all chunks of the knowledge base.

    ``rank``: 1 + the number of chunks with a strictly higher exact score, or the bound when ``exact`` is
    False ("below rank N": at least N chunks score higher). ``position``: its place in Milvus' own list for that
    score (dense and sparse only; what the candidate cut uses), None when that list does not hold it.
    ``score``: the value ranked, when it is known exactly (for rrf, over the full lists; see the module docstring).
    """

    rank: int
    exact: bool = True
    position: int | None = None
    score: float | None = None

    def describe(self) -> str:
        return f"rank {self.rank}" if self.exact else f"below rank {self.rank}"


@dataclass
class _Bounds:
    """Lower and upper ends of one score for every chunk of the full lists, and for any chunk past them."""

    lo: np.ndarray
    hi: np.ndarray
    unseen_hi: float | None  # None: no chunk is past the lists


class FullListRanks:
    """Hybrid, rrf and final ranks of any chunk among the chunks of Milvus' full dense and sparse lists for a query.

    Built once per query (the lists are scored and fused once); :meth:`ranks` then costs a few array comparisons.
    """

    def __init__(self, dense_hits: list[dict[str, Any]], sparse_hits: list[dict[str, Any]], encoding: QueryEncoding,
                 rule: ScoreFusion, window: int = MILVUS_MAX_LIMIT) -> None:
        self.rule = replace(rule, colbert=False, rerank=False)  # ranks are before any rerank (ColBERT, cross-encoder)
        both = replace(self.rule, mode="hybrid")  # hybrid and rrf for every chunk of both lists, whatever the mode
        pool = HybridRetriever.rank_hits(dense_hits, sparse_hits, encoding, both)
        self.dense_cut, self.sparse_cut = len(dense_hits) >= window, len(sparse_hits) >= window
        self.dense_len, self.sparse_len = len(dense_hits), len(sparse_hits)
        self.places: dict[str, np.ndarray] | None = None  # the lists' own order is in the hits
        self.ids = [c.row["id"] for c in pool]
        self.index = {chunk_id: i for i, chunk_id in enumerate(self.ids)}
        self.dense = np.asarray([c.scores.dense for c in pool], np.float64)
        self.sparse = np.asarray([c.scores.sparse for c in pool], np.float64)
        hybrid = [c.scores.hybrid for c in pool]
        self.hybrid = None if any(h is None for h in hybrid) else np.asarray(hybrid, np.float64)
        rrf = [self._rrf_bounds(c.scores) for c in pool]
        self.rrf_lo = np.asarray([lo for lo, _ in rrf], np.float64)
        self.rrf_hi = np.asarray([hi for _, hi in rrf], np.float64)
        in_dense = np.asarray([c.scores.ranks.dense is not None for c in pool], bool)
        in_sparse = np.asarray([c.scores.ranks.sparse is not None for c in pool], bool)
        self.dense_floor = float(self.dense[in_dense].min()) + FLOAT_SLACK if self.dense_cut else None
        self.sparse_floor = float(self.sparse[in_sparse].min()) + FLOAT_SLACK if self.sparse_cut else 0.0

    @classmethod
    def of_scores(cls, scores: ChunkScores, rule: ScoreFusion) -> FullListRanks:
        """From every chunk's exact dense and sparse scores (the in-process index): whole lists, nothing past a
        window, so every rank is exact. Places in the lists, hybrid and rrf are those :meth:`__init__` computes
        from lists that hold every chunk the filters keep (the sparse list: those sharing a query token)."""
        self = cls.__new__(cls)
        self.rule = replace(rule, colbert=False, rerank=False)
        kept = np.flatnonzero(scores.kept)
        self.ids = [scores.ids[i] for i in kept]
        self.index = {chunk_id: i for i, chunk_id in enumerate(self.ids)}
        self.dense, self.sparse = scores.dense[kept], scores.sparse[kept]
        names = np.asarray(self.ids, str)
        dense_place = _places(self.dense, names, np.ones(len(kept), bool))
        sparse_place = _places(self.sparse, names, self.sparse > 0)
        self.dense_cut = self.sparse_cut = False
        self.dense_len, self.sparse_len = len(kept), int(np.count_nonzero(sparse_place))
        total = self.rule.weights.get("dense", 0.0) + self.rule.weights.get("sparse", 0.0)
        self.hybrid = None if total <= 0 else (self.rule.weights.get("dense", 0.0) * self.dense
                                               + self.rule.weights.get("sparse", 0.0) * self.sparse) / total
        k = self.rule.rrf_k
        with np.errstate(divide="ignore"):
            rrf = 1.0 / (k + dense_place) + np.where(sparse_place > 0, 1.0 / (k + sparse_place), 0.0)
        self.rrf_lo = self.rrf_hi = rrf
        self.places = {"dense": dense_place, "sparse": sparse_place}
        self.dense_floor, self.sparse_floor = None, 0.0
        return self

    @property
    def whole(self) -> bool:
        """Whether the lists hold every chunk (no window cut them): every rank is then exact."""
        return not self.dense_cut and not self.sparse_cut

    def list_rank(self, name: str, chunk_id: str, value: float) -> int | None:
        """1 + the number of chunks of the lists whose ``name`` ("dense" or "sparse") score is strictly higher than
        the chunk's (its own value when it is in the lists, else ``value``); None when a window cut the lists."""
        if not self.whole:
            return None
        scores = self.dense if name == "dense" else self.sparse
        i = self.index.get(chunk_id)
        own = float(scores[i]) if i is not None else value
        return 1 + int(np.count_nonzero(scores > own))

    def place(self, name: str, chunk_id: str) -> int | None:
        """The chunk's place in the exact search's whole ``name`` list (None: not in it, or not known here: built
        from Milvus' windows, whose own order is in the hits)."""
        i = self.index.get(chunk_id)
        if self.places is None or i is None:
            return None
        place = int(self.places[name][i])
        return place or None

    def values(self, name: str, hits: list[dict[str, Any]]) -> list[float]:
        """The exact ``name`` ("dense" or "sparse") score of each of ``hits`` (chunks of the lists), in order."""
        scores = self.dense if name == "dense" else self.sparse
        return [float(scores[self.index[h["id"]]]) for h in hits]

    def ranks(self, chunk_id: str, scores: Scores, dense_place: int | None = None,
              sparse_place: int | None = None) -> dict[str, ListRank | None]:
        """``hybrid``, ``rrf`` and ``final`` ranks of a chunk with these exact dense and sparse ``scores``.

        ``scores.ranks`` are ignored: a chunk of the lists takes its places there; a chunk outside them (left out
        by the search filters, or past the window) takes ``dense_place`` / ``sparse_place``, the places it would
        have (its exact dense / sparse ranks), or, when None, a place after the window.
        """
        i = self.index.get(chunk_id)
        if i is not None:
            target = (self.dense[i], self.hybrid[i] if self.hybrid is not None else None, self.rrf_lo[i],
                      self.rrf_hi[i])
        else:
            probe = Scores(dense=scores.dense, sparse=scores.sparse)
            lo, hi = self._rrf_bounds(probe, dense_place, sparse_place)
            target = (probe.dense, self.rule.hybrid(probe), lo, hi)
        dense, hybrid, rrf_lo, rrf_hi = target
        return {name: self._rank(name, i, chunk_id, float(dense), hybrid, float(rrf_lo), float(rrf_hi),
                                 float(scores.sparse))
                for name in FUSED}

    # -- one score ----------------------------------------------------------------------------------

    def _rank(self, name: str, i: int | None, chunk_id: str, dense: float, hybrid: float | None, rrf_lo: float,
              rrf_hi: float, sparse: float) -> ListRank | None:
        kind = self.rule.kind if name == "final" else name
        if kind in ("hybrid", "weighted"):
            if hybrid is None or self.hybrid is None:
                return None
            bounds, lo_t, hi_t = self._bounds("hybrid"), float(hybrid), float(hybrid)
        elif kind == "rrf":
            bounds, lo_t, hi_t = self._bounds("rrf"), rrf_lo, rrf_hi
        else:  # single: final is the dense or sparse score itself
            value = dense if self.rule.mode == "dense" else sparse
            bounds, lo_t, hi_t = self._bounds(self.rule.mode), value, value
        others = np.ones(len(self.ids), bool)
        if i is not None:
            others[i] = False
        lo, hi = bounds.lo[others], bounds.hi[others]
        exact_c = lo == hi
        above = lo > hi_t
        below = hi < lo_t
        if lo_t == hi_t and name == "final":  # exact ties: the search's order (dense, then id)
            ids = np.asarray(self.ids, object)[others]
            ties = exact_c & (lo == lo_t)
            dense_c = self.dense[others]
            ahead = ties & ((dense_c > dense) | ((dense_c == dense) & (ids < chunk_id)))
            above = above | ahead
            below = below | (ties & ~ahead)
        elif lo_t == hi_t:
            below = below | (exact_c & (lo == lo_t))  # an equal score is not strictly higher
        unsure = int(np.count_nonzero(~above & ~below))
        unseen_unsure = bounds.unseen_hi is not None and bounds.unseen_hi >= lo_t
        score = lo_t if lo_t == hi_t else None
        if unsure or unseen_unsure:
            return ListRank(rank=int(np.count_nonzero(above)), exact=False, score=score)
        return ListRank(rank=1 + int(np.count_nonzero(above)), score=score)

    def _bounds(self, name: str) -> _Bounds:
        if name == "rrf":
            unseen = None
            if self.dense_cut:
                unseen = self._after(self.dense_len) + (self._after(self.sparse_len) if self.sparse_cut else 0.0)
            return _Bounds(self.rrf_lo, self.rrf_hi, unseen)
        values = {"dense": self.dense, "sparse": self.sparse, "hybrid": self.hybrid}[name]
        unseen_hi = None
        if self.dense_floor is not None:  # chunks past the dense window exist
            floors = {"dense": self.dense_floor, "sparse": self.sparse_floor}
            unseen_hi = floors[name] if name in floors else weighted_hybrid(floors, self.rule.weights)
        return _Bounds(values, values, unseen_hi)

    def _rrf_bounds(self, scores: Scores, dense_place: int | None = None,
                    sparse_place: int | None = None) -> tuple[float, float]:
        """rrf over the full lists: exact where the places are known, else up to a place after the window."""
        lo, extra = 0.0, 0.0
        for position, place, cut, length, present in (
            (scores.ranks.dense, dense_place, self.dense_cut, self.dense_len, True),
            (scores.ranks.sparse, sparse_place, self.sparse_cut, self.sparse_len, scores.sparse > 0),
        ):
            known = position if position is not None else place
            if known is not None:
                lo += 1.0 / (self.rule.rrf_k + known)
            elif cut and present:
                extra += self._after(length)
        return lo, lo + extra

    def _after(self, length: int) -> float:
        return 1.0 / (self.rule.rrf_k + length + 1)


def _places(scores: np.ndarray, ids: np.ndarray, listed: np.ndarray) -> np.ndarray:
    """Each chunk's 1-based place in the list of the ``listed`` chunks ordered by score, best first, ties by id
    (the exact search's order); 0 for a chunk not listed."""
    rows = np.flatnonzero(listed)
    order = rows[np.lexsort((ids[rows], -scores[rows]))]
    places = np.zeros(len(scores), np.int64)
    places[order] = np.arange(1, len(order) + 1)
    return places
