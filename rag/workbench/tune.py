"""Fusion weights learned from the user's judgments, with cross-validation across questions.

How: each judged question is retrieved once (:class:`CandidatePool`), then every fusion of a fixed grid is
replayed on those candidates and scored with ranx against the marks: hybrid rrf, and hybrid weighted with
dense 1.0 and a range of sparse weights (only the ratio of the weights matters), plus sparse alone; with
ColBERT reranking on, each also with a range of colbert weights; with the cross-encoder on, each with a range of
rerank weights, plus the cross-encoder's score alone. The cross-encoder's score of a (question, chunk) pair does not
depend on the weights, so each pair in the head of some fusion is scored once (:meth:`CandidatePool.score_heads`).
The grid is replayed with the retriever's own :class:`ScoreFusion` on its exact scores rather than with ranx
``optimize_fusion``: ranx fuses normalised scores by its own formulas, so its weights would not mean what
``retrieval.weights`` means.

Choosing: the fusion with the best mean nDCG@10, then Recall@(largest k); among equals, the current
settings, else the weights closest to them (a handful of marks must not move the weights for nothing).

Cross-validation: the questions are shuffled with a fixed seed and dealt into k = min(folds, questions)
folds; for each fold the fusion is learned on the other folds and measured, before (the current settings)
and after (the learned fusion), on the fold's own questions, which played no part in learning it. The
fusion learned on all the questions is ``learned`` (its figures on them, ``all_after``, are not held out).
The report recommends it (``chosen``) only when it held up: when the held-out nDCG@10 of the folds rose above
that of the current settings; otherwise ``chosen`` is the current fusion, kept, and a note says why.

Like ``rag eval --judgments``, each question is one retrieval of max(k) results (at least 10, for nDCG@10)
without ``min_score``; questions whose marks are all "not relevant" are left out (``skipped``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ranx import Qrels, Run, evaluate

from rag.config import DEFAULT_RERANK_WEIGHT, Fusion, Mode, RetrievalSettings, with_overrides
from rag.errors import InvalidInputError
from rag.evaluation import metric_names
from rag.rerank import load_reranker
from rag.retrieval.fusion import ScoreFusion
from rag.retrieval.retriever import HybridRetriever
from rag.workbench.candidate_pool import CandidatePool, Progress

DEFAULT_FOLDS = 5
DEFAULT_KS = (1, 5, 10)
SEED = 0
OBJECTIVE = "ndcg@10"
SPARSE_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)  # with dense 1.0
COLBERT_WEIGHTS = (0.0, 0.5, 1.0, 2.0)  # with dense 1.0, when ColBERT reranking is on
RERANK_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 5.0)  # with dense 1.0, when the cross-encoder reranks
FEW_QUESTIONS = 20  # below this, the report says its figures are not significant
NO_RESULT = "__no_result__"  # ranx needs a document per query; judged irrelevant by construction


@dataclass(frozen=True)
class FusionChoice:
    """A way to make ``final``: the mode, the fusion and the weights (dense, sparse, colbert, and rerank with the
    cross-encoder).

    ``colbert``: whether ColBERT reranking is on (the colbert weight counts only then); ``rerank``: whether the
    cross-encoder reranks (the rerank weight counts only then); neither is tuned.
    """

    mode: Mode
    fusion: Fusion
    weights: Mapping[str, float]
    colbert: bool = False
    rerank: bool = False

    @classmethod
    def of(cls, settings: RetrievalSettings) -> FusionChoice:
        weights = settings.weights.model_dump()
        if settings.cross_encoder_rerank:
            weights["rerank"] = weights.get("rerank", DEFAULT_RERANK_WEIGHT)
        return cls(settings.mode, settings.fusion, weights, settings.colbert_rerank, settings.cross_encoder_rerank)

    def rule(self, settings: RetrievalSettings) -> ScoreFusion:
        """The fusion rule of this choice, with the rrf_k of ``settings``."""
        return ScoreFusion(self.mode, self.fusion, self.weights, colbert=self.colbert, rrf_k=settings.rrf_k,
                           rerank=self.rerank)

    def same(self, other: FusionChoice) -> bool:
        """Whether both rank alike: the same mode and fusion and, when weighted, weights in the same ratio."""
        if (self.mode, self.fusion, self.colbert, self.rerank) != (other.mode, other.fusion, other.colbert,
                                                                   other.rerank):
            return False
        if self.mode != "hybrid" or self.fusion == "rrf":
            return True
        used = ("dense", *self.weighed)
        mine, theirs = sum(self.weights[n] for n in used), sum(other.weights[n] for n in used)
        return all(math.isclose(self.weights[n] * theirs, other.weights[n] * mine) for n in used)

    def describe(self) -> str:
        """E.g. ``hybrid weighted (dense 1, sparse 0.5)``, ``hybrid rrf + colbert``, ``dense + rerank`` or ``dense``."""
        rerank = " + colbert" if self.colbert else " + rerank" if self.rerank else ""
        if self.mode != "hybrid":
            return self.mode + rerank
        if self.fusion == "rrf":
            return "hybrid rrf" + rerank
        shown = ", ".join(f"{n} {self.weights[n]:g}" for n in ("dense", *self.weighed))
        return f"hybrid weighted ({shown})"

    @property
    def weighed(self) -> tuple[str, ...]:
        """The weights that count besides dense: sparse, and colbert (rerank) with ColBERT (cross-encoder) reranking."""
        return ("sparse", "colbert") if self.colbert else ("sparse", "rerank") if self.rerank else ("sparse",)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "fusion": self.fusion, "weights": dict(self.weights), "colbert": self.colbert,
                "rerank": self.rerank, "label": self.describe()}


@dataclass
class FoldResult:
    """One fold: the fusion learned without its questions, and both fusions measured on them."""

    fold: int
    questions: list[str]
    learned: FusionChoice
    before: dict[str, float]
    after: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "learned": self.learned.to_dict()}


@dataclass
class TuneReport:
    """The outcome of :func:`tune`: ``learned`` on all questions, ``chosen`` = learned if the folds say it holds."""

    kb: str
    questions: int
    skipped: int
    ks: list[int]
    depth: int
    start: FusionChoice
    learned: FusionChoice
    chosen: FusionChoice
    folds: list[FoldResult]
    held_out_before: dict[str, float]
    held_out_after: dict[str, float]
    all_before: dict[str, float]
    all_after: dict[str, float]
    incomplete_pools: int = 0
    tried: int = 0
    notes: list[str] = field(default_factory=list)
    rerank_pairs: int = 0  # (question, chunk) pairs the cross-encoder scored, each once

    @property
    def changed(self) -> bool:
        return not self.chosen.same(self.start)

    def retrieval_changes(self) -> dict[str, Any]:
        """The ``retrieval`` keys to write: fusion and weights, and mode when it was not hybrid."""
        changes: dict[str, Any] = {"fusion": self.chosen.fusion, "weights": dict(self.chosen.weights)}
        if self.start.mode != self.chosen.mode:
            changes["mode"] = self.chosen.mode
        return changes

    def to_dict(self) -> dict[str, Any]:
        return {
            "kb": self.kb, "questions": self.questions, "skipped": self.skipped, "ks": self.ks, "depth": self.depth,
            "start": self.start.to_dict(), "learned": self.learned.to_dict(), "learned_on": "all questions",
            "chosen": self.chosen.to_dict(), "changed": self.changed, "folds": [f.to_dict() for f in self.folds],
            "held_out": {"before": self.held_out_before, "after": self.held_out_after},
            "all_questions": {"before": self.all_before, "after": self.all_after},
            "incomplete_pools": self.incomplete_pools, "fusions_tried": self.tried, "notes": list(self.notes),
            "rerank_pairs": self.rerank_pairs,
        }


def grid(start: FusionChoice) -> list[FusionChoice]:
    """The fusions tried: the current one first, hybrid rrf, sparse alone and dense 1.0 with each sparse weight
    (and, with ColBERT reranking, each colbert weight; with the cross-encoder, each rerank weight, and the
    cross-encoder's score alone)."""
    colberts = COLBERT_WEIGHTS if start.colbert else (start.weights["colbert"],)
    reranks: dict[str, float] = {"rerank": start.weights["rerank"]} if start.rerank else {}
    extra = [{"colbert": c, **reranks} for c in colberts]
    if start.rerank:
        extra = [{"colbert": start.weights["colbert"], "rerank": r} for r in RERANK_WEIGHTS]

    def choice(fusion: Fusion, weights: Mapping[str, float]) -> FusionChoice:
        return FusionChoice("hybrid", fusion, weights, start.colbert, start.rerank)

    choices = [start, choice("rrf", start.weights)]
    choices += [choice("weighted", {"dense": 0.0, "sparse": 1.0, **more}) for more in extra]
    choices += [choice("weighted", {"dense": 1.0, "sparse": s, **more}) for s in SPARSE_WEIGHTS for more in extra]
    if start.rerank:
        choices.append(choice("weighted", {"dense": 0.0, "sparse": 0.0, "colbert": start.weights["colbert"],
                                           "rerank": 1.0}))
    unique: list[FusionChoice] = []
    for choice in choices:
        if not any(choice.same(seen) for seen in unique):
            unique.append(choice)
    return unique


def folds_of(questions: Sequence[str], folds: int, seed: int = SEED) -> list[list[str]]:
    """The questions shuffled with ``seed`` and dealt into min(folds, len(questions)) folds."""
    order = sorted(questions)
    random.Random(seed).shuffle(order)
    count = min(folds, len(order))
    return [order[i::count] for i in range(count)]


def tune(
    retriever: HybridRetriever,
    qrels: Mapping[str, Mapping[str, int]],
    *,
    folds: int = DEFAULT_FOLDS,
    ks: Sequence[int] = DEFAULT_KS,
    seed: int = SEED,
    progress: Progress | None = None,
) -> TuneReport:
    """Learn the fusion of ``retriever`` from ``qrels`` (``rag.evaluation.load_judgments``); see the module doc.

    ``progress(stage, done, total)`` is called after each retrieval, each question the cross-encoder scores (when
    it reranks) and each fold.
    """
    settings = retriever.settings
    if not getattr(retriever.encoder, "supports_sparse", True):
        raise InvalidInputError("tuning the fusion needs sparse (lexical) scores, which the embedding model "
                                f"{retriever.encoder.model_name!r} does not produce (it is dense-only).")
    if folds < 2:
        raise InvalidInputError(f"folds must be at least 2 (one to learn on, one to check on), got {folds}.")
    ks = sorted(set(ks))
    if not ks or ks[0] < 1:
        raise InvalidInputError("the cut-offs k must be whole numbers of at least 1.")
    judged = {q: dict(marks) for q, marks in qrels.items() if any(g > 0 for g in marks.values())}
    if len(judged) < 2:
        raise InvalidInputError(f"tuning needs at least 2 questions with a chunk marked relevant; found {len(judged)}.")

    depth = max(max(ks), 10)
    start = FusionChoice.of(settings)
    reranker = load_reranker(settings.reranker) if start.rerank else None
    pool = CandidatePool.collect(retriever, sorted(judged), depth, colbert=start.colbert, reranker=reranker,
                                 progress=progress)
    choices = grid(start)
    pool.score_heads([choice.rule(settings) for choice in choices], progress)
    names = metric_names(ks)
    per_query = [_per_query(pool, judged, choice.rule(settings), names) for choice in choices]

    splits = folds_of(list(judged), folds, seed)
    fold_results, learned_for = [], {}
    for number, held_out in enumerate(splits, start=1):
        learn_on = [q for q in judged if q not in set(held_out)]
        best = _best(choices, per_query, learn_on, start, max(ks))
        learned_for.update(dict.fromkeys(held_out, best))
        fold_results.append(FoldResult(number, held_out, choices[best], _mean(per_query[0], held_out, names),
                                       _mean(per_query[best], held_out, names)))
        if progress is not None:
            progress("cross-validating", number, len(splits))
    everyone = list(judged)
    best = _best(choices, per_query, everyone, start, max(ks))
    held_out_after = {name: _avg([per_query[learned_for[q]][name][q] for q in everyone]) for name in names}
    notes = []
    before, after = _mean(per_query[0], everyone, names), held_out_after
    held_up = after[OBJECTIVE] > before[OBJECTIVE] + 1e-9
    if not held_up and not choices[best].same(start):
        notes.append(f"the fusion learned on all questions ({choices[best].describe()}) did not raise the held-out "
                     f"{OBJECTIVE} ({before[OBJECTIVE]:.3f} -> {after[OBJECTIVE]:.3f}); the current fusion is kept")
    if len(judged) < FEW_QUESTIONS:
        notes.append(f"only {len(judged)} questions: the held-out figures are not significant; mark more questions "
                     "before trusting a change")
    if pool.pools and any(not p.complete for p in pool.pools.values()):
        notes.append("for some questions the pool did not hold every chunk of the candidate lists; "
                     "their figures are those of the chunks the current settings rank highest")
    return TuneReport(
        kb=retriever.knowledge_base.name, questions=len(judged), skipped=len(qrels) - len(judged), ks=ks, depth=depth,
        start=start, learned=choices[best], chosen=choices[best] if held_up else start, folds=fold_results,
        held_out_before=before, held_out_after=held_out_after, all_before=before,
        all_after=_mean(per_query[best], everyone, names),
        incomplete_pools=sum(1 for p in pool.pools.values() if not p.complete), tried=len(choices), notes=notes,
        rerank_pairs=pool.pairs_scored,
    )


def apply_fusion(settings: RetrievalSettings, choice: FusionChoice) -> RetrievalSettings:
    """``settings`` with the mode, fusion and weights of ``choice`` (e.g. a web-app session's retrieval settings)."""
    return with_overrides(settings, mode=choice.mode, fusion=choice.fusion, weights=dict(choice.weights))


# -- scoring ---------------------------------------------------------------------------------------------


def _per_query(
    pool: CandidatePool, qrels: Mapping[str, Mapping[str, int]], rule: ScoreFusion, names: list[str]
) -> dict[str, dict[str, float]]:
    """metric -> question -> value of the replayed retrieval with ``rule``."""
    run = {}
    for question in qrels:
        ranked = pool.ranking(question, rule)
        run[question] = {chunk_id: float(len(ranked) - i) for i, chunk_id in enumerate(ranked)} or {NO_RESULT: 0.0}
    truth = Qrels({q: dict(marks) for q, marks in qrels.items()})
    values = evaluate(truth, Run(run), names, return_mean=False)  # the run has every question
    order = list(truth.keys())
    return {name: dict(zip(order, (float(v) for v in values[name]), strict=True)) for name in names}


def _avg(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _mean(per_query: dict[str, dict[str, float]], questions: Sequence[str], names: list[str]) -> dict[str, float]:
    return {name: _avg([per_query[name][q] for q in questions]) for name in names}


def _best(choices: list[FusionChoice], per_query: list[dict[str, dict[str, float]]], questions: Sequence[str],
          start: FusionChoice, top: int) -> int:
    """The index of the best choice on ``questions``: nDCG@10, then Recall@top, then nearest to ``start``."""
    def key(index: int) -> tuple[float, float, float]:
        values = per_query[index]
        return (round(_avg([values[OBJECTIVE][q] for q in questions]), 9),
                round(_avg([values[f"recall@{top}"][q] for q in questions]), 9),
                -_distance(choices[index], start))
    return max(range(len(choices)), key=key)


def _distance(choice: FusionChoice, start: FusionChoice) -> float:
    """0 for the current fusion; the change of the sparse (and colbert) to dense ratio in log scale; 100 for rrf."""
    if choice.same(start):
        return 0.0
    if choice.fusion != start.fusion or choice.mode != start.mode:
        return 100.0
    return sum(abs(_log_ratio(choice.weights, n) - _log_ratio(start.weights, n)) for n in choice.weighed)


def _log_ratio(weights: Mapping[str, float], name: str) -> float:
    return math.log((weights[name] + 0.01) / (weights["dense"] + 0.01))
