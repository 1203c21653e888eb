"""The candidates of one retrieval per question, ranked again by any fusion rule without searching again.

Tuning compares many fusion weights on the same questions. Searching Milvus once per weight would be slow,
so each question is searched once, with the current settings and a generous ``top_k`` (the pool), and every
chunk returned keeps what the retriever computed for it: its text, its exact dense and sparse scores, its ColBERT
score (when ColBERT reranking is on: the search reranks the whole pool) and its positions in Milvus' dense and
sparse lists.

:meth:`CandidatePool.ranking` then replays a retrieval of ``depth`` results with any :class:`ScoreFusion`: the
candidates are the chunks within ``candidate_limit`` of a list the mode uses (positions past it are dropped,
as a search of that depth would not see them), fused by the rule, ordered as the retriever orders them
(final, then dense, then id), the first ``rerank_candidates`` reranked with ColBERT or the cross-encoder when
the rule uses it, by the retriever's own reranking step (:func:`rag.rerank.candidates.rerank_head`).
The cross-encoder's score of a (question, chunk) pair does not depend on the fusion, so each pair is scored once
and kept: :meth:`CandidatePool.score_heads` scores, per question in one call, every chunk that the head of any
rule to replay holds (a pair a later rule needs is scored when first needed).
The replay is exact when the pool holds every chunk of those lists (``QuestionPool.complete``); a chunk
that the current settings rank below the pool but other weights would bring up is not seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rag.config import MILVUS_MAX_LIMIT, RetrievalSettings, with_overrides
from rag.errors import InvalidInputError
from rag.rerank.base import Reranker, RerankScore
from rag.rerank.candidates import rerank_head
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
    """One chunk of a question's pool: its id, the scores the retriever computed (ranks included) and its text."""

    chunk_id: str
    scores: Scores
    text: str = ""


class Replayed:
    """A pool candidate in one replayed retrieval: the row and fresh scores the reranking step works on."""

    __slots__ = ("candidate", "row", "scores")

    def __init__(self, candidate: Candidate, scores: Scores) -> None:
        self.candidate = candidate
        self.row: dict[str, Any] = {"id": candidate.chunk_id, "text": candidate.text}
        self.scores = scores


@dataclass(frozen=True)
class QuestionPool:
    """The candidates of one question; ``complete`` when they hold every chunk of the replayed lists."""

    question: str
    candidates: tuple[Candidate, ...]
    complete: bool


class CandidatePool:
    """One retrieval per question, kept, and replayed for any fusion rule (see the module docstring)."""

    def __init__(self, settings: RetrievalSettings, depth: int, pools: dict[str, QuestionPool],
                 reranker: Reranker | None = None) -> None:
        self.settings = settings
        self.depth = depth
        self.pools = pools
        self.reranker = reranker
        self.rerank_scores: dict[str, dict[str, RerankScore]] = {}  # question -> chunk id -> cross-encoder score

    @property
    def candidate_limit(self) -> int:
        """The length of each Milvus list a retrieval of ``depth`` results uses."""
        return with_overrides(self.settings, top_k=self.depth).candidate_limit

    @classmethod
    def collect(
        cls, retriever: HybridRetriever, questions: Iterable[str], depth: int, *, colbert: bool = False,
        reranker: Reranker | None = None, progress: Progress | None = None,
    ) -> CandidatePool:
        """Search each question once (hybrid, the retriever's settings, no ``min_score``) and keep the pool.

        ``depth``: the number of results the replayed retrievals return. ``colbert``: also ColBERT-score every
        chunk of the pool, so that rules with ColBERT reranking can be replayed. ``reranker``: the cross-encoder
        that replays of rules with cross-encoder reranking use (the search itself does not cross-encode).
        """
        if depth < 1:
            raise InvalidInputError(f"depth must be at least 1, got {depth}.")
        base = retriever.settings
        limit = with_overrides(base, top_k=depth).candidate_limit
        size = min(max(MIN_POOL, 2 * limit), MAX_POOL, MILVUS_MAX_LIMIT)
        wide = with_overrides(base, top_k=size, mode="hybrid", min_score=0.0, rerank="colbert" if colbert else "none",
                              rerank_candidates=size)
        searcher = retriever.model_copy(update={"settings": wide})  # the same store, encoder and query cache
        texts = list(questions)
        pools: dict[str, QuestionPool] = {}
        for done, question in enumerate(texts, start=1):
            result = searcher.search(question)
            candidates = tuple(Candidate(str(doc.metadata["id"]), Scores.from_metadata(doc.metadata), doc.page_content)
                               for doc in result.documents)
            complete = all(
                sum(1 for c in candidates if (getattr(c.scores.ranks, name) or limit + 1) <= limit)
                == min(limit, hits)
                for name, hits in (("dense", result.dense_hits), ("sparse", result.sparse_hits))
            )
            pools[question] = QuestionPool(question, candidates, complete)
            if progress is not None:
                progress("retrieving", done, len(texts))
        return cls(base, depth, pools, reranker)

    def ranking(self, question: str, rule: ScoreFusion) -> list[str]:
        """The chunk ids a retrieval of ``depth`` results with ``rule`` returns for ``question``, best first."""
        fused = self._fused(question, rule)
        size = self.settings.rerank_candidates
        if rule.colbert:
            fused = rerank_head(fused, size, rule, _order, _colbert_scores, "colbert")
        elif rule.rerank:
            fused = rerank_head(fused, size, rule, _order, lambda head: self._cross_encode(question, head), "rerank",
                                by="rerank_raw")
        return [c.row["id"] for c in fused[: self.depth]]

    def score_heads(self, rules: Sequence[ScoreFusion], progress: Progress | None = None) -> None:
        """Cross-encoder-score, per question in one call, every chunk in the head (the first ``rerank_candidates``
        before reranking) of any of ``rules`` that reranks with the cross-encoder; ``progress("reranking", ...)``."""
        reranking = [rule for rule in rules if rule.rerank]
        if not reranking:
            return
        size = self.settings.rerank_candidates
        for done, question in enumerate(self.pools, start=1):
            heads: dict[str, Replayed] = {}
            for rule in reranking:
                for replayed in self._fused(question, rule)[:size]:
                    heads.setdefault(replayed.row["id"], replayed)
            self._cross_encode(question, list(heads.values()))
            if progress is not None:
                progress("reranking", done, len(self.pools))

    @property
    def pairs_scored(self) -> int:
        """The (question, chunk) pairs the cross-encoder has scored for this pool, each once."""
        return sum(len(scores) for scores in self.rerank_scores.values())

    def _fused(self, question: str, rule: ScoreFusion) -> list[Replayed]:
        """The candidates of a retrieval with ``rule`` before any reranking: fused and in the retriever's order."""
        limit = self.candidate_limit
        lists = LISTS_OF_MODE[rule.mode]
        fused: list[Replayed] = []
        for candidate in self.pools[question].candidates:
            ranks = Ranks(**{name: _within(getattr(candidate.scores.ranks, name), limit)
                             for name in ("dense", "sparse")})
            if all(getattr(ranks, name) is None for name in lists):
                continue  # in none of the lists the mode uses
            scores = Scores(dense=candidate.scores.dense, sparse=candidate.scores.sparse, ranks=ranks)
            fused.append(Replayed(candidate, rule.fuse(scores)))
        fused.sort(key=_order)
        return fused

    def _cross_encode(self, question: str, head: list[Replayed]) -> None:
        """The cross-encoder's scores of ``head`` for ``question`` (``rerank``, ``rerank_raw``); each pair is scored
        once and kept."""
        kept = self.rerank_scores.setdefault(question, {})
        missing = [c for c in head if c.row["id"] not in kept]
        if missing:
            if self.reranker is None:
                raise InvalidInputError("replaying cross-encoder reranking needs the reranker: collect the pool with "
                                        "reranker=load_reranker(settings.reranker).")
            found = self.reranker.score(question, [c.row["text"] for c in missing])
            kept.update((c.row["id"], score) for c, score in zip(missing, found, strict=True))
        for replayed in head:
            score = kept[replayed.row["id"]]
            replayed.scores.rerank, replayed.scores.rerank_raw = score.normalised, score.raw


def _colbert_scores(head: list[Replayed]) -> None:
    """The ColBERT scores the pool's search computed (it reranked the whole pool)."""
    for replayed in head:
        replayed.scores.colbert = replayed.candidate.scores.colbert


def _within(rank: int | None, limit: int) -> int | None:
    return rank if rank is not None and rank <= limit else None


def _order(c: Replayed) -> tuple[float, float, str]:
    """The retriever's order: by final, best first; ties by dense, then by id."""
    return (-c.scores.final, -c.scores.dense, c.row["id"])
