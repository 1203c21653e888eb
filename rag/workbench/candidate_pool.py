"""The candidates of one retrieval per question, ranked again by any fusion rule without searching again.

Tuning compares many fusion weights on the same questions. Searching Milvus once per weight would be slow,
so each question is searched once, with the current settings and a generous ``top_k`` (the pool), and every
chunk returned keeps what the retriever computed for it: its exact dense and sparse scores, its ColBERT score
(when reranking is on: the search reranks the whole pool) and its positions in Milvus' dense and sparse lists.

:meth:`CandidatePool.ranking` then replays a retrieval of ``depth`` results with any :class:`ScoreFusion`: the
candidates are the chunks within ``candidate_limit`` of a list the mode uses (positions past it are dropped,
as a search of that depth would not see them), fused by the rule, ordered as the retriever orders them
(final, then dense, then id), the first ``rerank_candidates`` reranked with ColBERT when the rule uses it.
The replay is exact when the pool holds every chunk of those lists (``QuestionPool.complete``); a chunk
that the current settings rank below the pool but other weights would bring up is not seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rag.config import MILVUS_MAX_LIMIT, RetrievalSettings, with_overrides
from rag.errors import InvalidInputError
from rag.retrieval.chunk_scores import Ranks, Scores
from rag.retrieval.fusion import ScoreFusion
from rag.retrieval.retriever import HybridRetriever

MIN_POOL = 100  # chunks kept per question at least
MAX_POOL = 1000  # RetrievalSettings.rerank_candidates' upper bound: the whole pool can be ColBERT-scored
LISTS_OF_MODE = {"dense": ("dense",), "sparse": ("sparse",), "hybrid": ("dense", "sparse")}

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``, called as work advances (e.g. ``("retrieving", 3, 40)``)."""


@dataclass(frozen=True)
class Candidate:
    """One chunk of a question's pool: its id and the scores the retriever computed (ranks included)."""

    chunk_id: str
    scores: Scores


@dataclass(frozen=True)
class QuestionPool:
    """The candidates of one question; ``complete`` when they hold every chunk of the replayed lists."""

    question: str
    candidates: tuple[Candidate, ...]
    complete: bool


class CandidatePool:
    """One retrieval per question, kept, and replayed for any fusion rule (see the module docstring)."""

    def __init__(self, settings: RetrievalSettings, depth: int, pools: dict[str, QuestionPool]) -> None:
        self.settings = settings
        self.depth = depth
        self.pools = pools

    @property
    def candidate_limit(self) -> int:
        """The length of each Milvus list a retrieval of ``depth`` results uses."""
        return with_overrides(self.settings, top_k=self.depth).candidate_limit

    @classmethod
    def collect(
        cls, retriever: HybridRetriever, questions: Iterable[str], depth: int, *, colbert: bool = False,
        progress: Progress | None = None,
    ) -> CandidatePool:
        """Search each question once (hybrid, the retriever's settings, no ``min_score``) and keep the pool.

        ``depth``: the number of results the replayed retrievals return. ``colbert``: also ColBERT-score every
        chunk of the pool, so that rules with ColBERT reranking can be replayed.
        """
        if depth < 1:
            raise InvalidInputError(f"depth must be at least 1, got {depth}.")
        base = retriever.settings
        limit = with_overrides(base, top_k=depth).candidate_limit
        size = min(max(MIN_POOL, 2 * limit), MAX_POOL, MILVUS_MAX_LIMIT)
        wide = with_overrides(base, top_k=size, mode="hybrid", min_score=0.0, colbert_rerank=colbert,
                              rerank_candidates=size)
        searcher = retriever.model_copy(update={"settings": wide})  # the same store, encoder and query cache
        texts = list(questions)
        pools: dict[str, QuestionPool] = {}
        for done, question in enumerate(texts, start=1):
            result = searcher.search(question)
            candidates = tuple(Candidate(str(doc.metadata["id"]), Scores.from_metadata(doc.metadata))
                               for doc in result.documents)
            complete = all(
                sum(1 for c in candidates if (getattr(c.scores.ranks, name) or limit + 1) <= limit)
                == min(limit, hits)
                for name, hits in (("dense", result.dense_hits), ("sparse", result.sparse_hits))
            )
            pools[question] = QuestionPool(question, candidates, complete)
            if progress is not None:
                progress("retrieving", done, len(texts))
        return cls(base, depth, pools)

    def ranking(self, question: str, rule: ScoreFusion) -> list[str]:
        """The chunk ids a retrieval of ``depth`` results with ``rule`` returns for ``question``, best first."""
        limit = self.candidate_limit
        lists = LISTS_OF_MODE[rule.mode]
        fused: list[tuple[Candidate, Scores]] = []
        for candidate in self.pools[question].candidates:
            ranks = Ranks(**{name: _within(getattr(candidate.scores.ranks, name), limit)
                             for name in ("dense", "sparse")})
            if all(getattr(ranks, name) is None for name in lists):
                continue  # in none of the lists the mode uses
            scores = Scores(dense=candidate.scores.dense, sparse=candidate.scores.sparse, ranks=ranks)
            fused.append((candidate, rule.fuse(scores)))
        fused.sort(key=_order)
        if rule.colbert:
            fused = self._rerank(fused, rule)
        return [candidate.chunk_id for candidate, _ in fused[: self.depth]]

    def _rerank(self, fused: list[tuple[Candidate, Scores]], rule: ScoreFusion) -> list[tuple[Candidate, Scores]]:
        """As the retriever does: ColBERT-score the first ``rerank_candidates``, reorder them, the rest after."""
        head, tail = fused[: self.settings.rerank_candidates], fused[self.settings.rerank_candidates:]
        for candidate, scores in head:
            scores.colbert = candidate.scores.colbert
        by_colbert = sorted(head, key=lambda pair: (-(pair[1].colbert or 0.0), pair[0].chunk_id))
        for rank, (_, scores) in enumerate(by_colbert, start=1):
            scores.ranks.colbert = rank
        for _, scores in head:
            rule.fuse(scores)
        head.sort(key=_order)
        return head + tail


def _within(rank: int | None, limit: int) -> int | None:
    return rank if rank is not None and rank <= limit else None


def _order(pair: tuple[Candidate, Scores]) -> tuple[float, float, str]:
    return (-pair[1].final, -pair[1].dense, pair[0].chunk_id)
