"""The reranking step of a search: the cross-encoder scores the best candidates and the rule reorders them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from rag.rerank.base import Reranker
from rag.retrieval.chunk_scores import Scores
from rag.retrieval.fusion import ScoreFusion


class RerankCandidate(Protocol):
    """A chunk under consideration: its stored row (``text``, ``id``) and its scores."""

    row: dict[str, Any]
    scores: Scores


CandidateT = TypeVar("CandidateT", bound=RerankCandidate)


def rerank_head(
    pool: list[CandidateT], size: int, rule: ScoreFusion, order: Callable[[CandidateT], Any],
    score: Callable[[list[CandidateT]], None], name: str, by: str | None = None,
) -> list[CandidateT]:
    """The reranking step every reranker shares: ``score`` scores the best ``size`` of ``pool`` (already in search
    order); each gets its place by its score ``by`` (default ``name``) as ``ranks.<name>``, ties by id, and a
    ``final`` by ``rule``, and they are reordered by ``order``; the rest of the pool keeps its order after them."""
    head, tail = pool[:size], pool[size:]
    score(head)
    by_score = sorted(head, key=lambda c: (-(getattr(c.scores, by or name) or 0.0), c.row["id"]))
    for rank, candidate in enumerate(by_score, start=1):
        setattr(candidate.scores.ranks, name, rank)
    for candidate in head:
        rule.fuse(candidate.scores)
    head.sort(key=order)
    return head + tail


def rerank_candidates(
    reranker: Reranker, query: str, pool: list[CandidateT], rule: ScoreFusion, size: int,
    order: Callable[[CandidateT], Any],
) -> list[CandidateT]:
    """Cross-encoder-score the best ``size`` of ``pool`` (already in search order), reorder them by ``order``.

    Each of them gets ``rerank`` (sigmoid) and ``rerank_raw`` (logit), its place in the order by the logit
    (``ranks.rerank``, ties by id) and a ``final`` by ``rule``; the rest of
    the pool keeps its order after them, as with ColBERT reranking.
    """
    def score(head: list[CandidateT]) -> None:
        for candidate, found in zip(head, reranker.score(query, [c.row["text"] for c in head]), strict=True):
            candidate.scores.rerank, candidate.scores.rerank_raw = found.normalised, found.raw

    return rerank_head(pool, size, rule, order, score, "rerank", by="rerank_raw")
