"""The one rule that makes a chunk's ``final`` score, and the formula a user can check it with.

A :class:`ScoreFusion` is built once per search from the mode, the fusion, the weights, the reranking (ColBERT
or the cross-encoder) and rrf_k. The retriever scores with it, and the web app's formula, the CLI tables and the
exports explain with it, so the rule is written only here:

- dense or sparse mode: ``final`` is that score. With ColBERT reranking, a reranked chunk's ``final`` is the
  weighted mean of that score and ``colbert``, e.g. ``dense+colbert = (1.0 x dense + 1.0 x colbert) / 2.0``.
- hybrid mode, weighted fusion: ``final = hybrid``, the weighted mean of dense and sparse (and colbert when
  the chunk was reranked).
- hybrid mode, rrf fusion: ``final = rrf`` = sum over the lists holding the chunk of 1 / (rrf_k + rank);
  with ColBERT reranking the order by colbert is a third list.
- cross-encoder reranking works as ColBERT does with the ``rerank`` score in place of ``colbert``: the
  weighted mean adds the *normalised* score ``rerank`` = sigmoid(logit), 0..1, with ``weights.rerank``
  (1.0 unless set; dense and sparse weights 0 order by the cross-encoder alone); rrf adds the order by the
  cross-encoder as a list (``rerank_rank``). The raw logit ``rerank_raw`` is shown but enters nothing.

A chunk outside the rerank set has no colbert (or rerank) score; its ``final`` uses the scores it has. The weights of
the scores a weighted ``final`` uses must not all be 0 (:meth:`ScoreFusion.check`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from rag.config import DEFAULT_RERANK_WEIGHT, FUSIONS, MODES, Fusion, Mode, RetrievalSettings, WeightSettings
from rag.errors import InvalidInputError
from rag.retrieval.chunk_scores import Ranks, Scores
from rag.retrieval.scores import hybrid_formula, resolve_weights, rrf_formula, rrf_score, weighted_hybrid

DEFAULT_RRF_K = RetrievalSettings().rrf_k


@dataclass(frozen=True, eq=False)
class ScoreFusion:
    """Which scores count for ``mode``/``fusion``/``colbert``/``rerank``, the ``final`` value and its formula.

    ``colbert``: the ColBERT score enters ``final``; ``rerank``: the cross-encoder's normalised score does
    (at most one of them: ``retrieval.rerank`` picks one).
    """

    mode: Mode
    fusion: Fusion
    weights: Mapping[str, float]
    colbert: bool = False
    rrf_k: int = DEFAULT_RRF_K
    rerank: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}.")
        if self.fusion not in FUSIONS:
            raise InvalidInputError(f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}.")
        if self.colbert and self.rerank:
            raise InvalidInputError("rerank with colbert or with the cross-encoder, not both (retrieval.rerank).")
        weights = resolve_weights(self.weights)
        if self.rerank:
            weights.setdefault("rerank", DEFAULT_RERANK_WEIGHT)
        object.__setattr__(self, "weights", weights)

    @classmethod
    def from_settings(cls, settings: RetrievalSettings) -> ScoreFusion:
        """The rule of these retrieval settings, checked (see :meth:`check`)."""
        fusion = cls(settings.mode, settings.fusion, settings.weights.model_dump(), colbert=settings.colbert_rerank,
                     rrf_k=settings.rrf_k, rerank=settings.cross_encoder_rerank)
        fusion.check()
        return fusion

    @classmethod
    def of(cls, scores: Scores, rrf_k: int = DEFAULT_RRF_K) -> ScoreFusion:
        """The rule that made this chunk's ``final`` (with ColBERT / the cross-encoder if the chunk has that score)."""
        weights = scores.weights or WeightSettings().model_dump()
        return cls(scores.mode or "hybrid", scores.fusion or "weighted", weights, colbert=scores.colbert is not None,
                   rrf_k=rrf_k, rerank=scores.rerank is not None)

    def for_chunk(self, scores: Scores) -> ScoreFusion:
        """This rule for one chunk: with ColBERT (or the cross-encoder) only if the chunk was reranked by it."""
        has_colbert, has_rerank = scores.colbert is not None, scores.rerank is not None
        if (has_colbert, has_rerank) == (self.colbert, self.rerank):
            return self
        return replace(self, colbert=has_colbert, rerank=has_rerank)

    # -- what counts ----------------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """``rrf`` (rank fusion), ``weighted`` (a weighted mean of scores) or ``single`` (one score as it is)."""
        if self.mode == "hybrid":
            return self.fusion
        return "weighted" if self.colbert or self.rerank else "single"

    @property
    def used(self) -> tuple[str, ...]:
        """The scores (or, for rrf, the ranked lists) that make ``final``, e.g. ``("dense", "sparse")``."""
        base = ("dense", "sparse") if self.mode == "hybrid" else (self.mode,)
        return (*base, *(["colbert"] if self.colbert else []), *(["rerank"] if self.rerank else []))

    @property
    def name(self) -> str:
        """What ``final`` is called in the formula: hybrid, rrf, dense, sparse, dense+colbert, dense+rerank, ..."""
        if self.mode == "hybrid":
            return "rrf" if self.fusion == "rrf" else "hybrid"
        if self.colbert or self.rerank:
            return f"{self.mode}+{'colbert' if self.colbert else 'rerank'}"
        return self.mode

    def check(self) -> None:
        """Refuse weights that leave ``final`` undefined: all the weights a weighted ``final`` uses are 0."""
        if self.kind == "weighted" and sum(self.weights[name] for name in self.used) <= 0:
            raise InvalidInputError(
                f"the weights of {' and '.join(self.used)} are all 0, so the final score is undefined; give at "
                "least one a positive weight (retrieval.weights)."
            )

    # -- values ---------------------------------------------------------------------------------------

    def hybrid(self, scores: Scores) -> float | None:
        """sum(w_i x s_i) / sum(w_i) over dense, sparse, colbert, rerank (if present); None if their weights are 0."""
        return weighted_hybrid({"dense": scores.dense, "sparse": scores.sparse, "colbert": scores.colbert,
                                "rerank": scores.rerank}, self.weights)

    def rrf(self, ranks: Ranks) -> float:
        """Reciprocal rank fusion over the lists that hold the chunk."""
        return rrf_score((rank for _, rank in ranks.present()), self.rrf_k)

    def final(self, scores: Scores) -> float:
        """The score that orders results and that ``min_score`` applies to."""
        rule = self.for_chunk(scores)
        if rule.kind == "rrf":
            return rule.rrf(scores.ranks)
        if rule.kind == "single":
            return float(getattr(scores, rule.mode))
        value = weighted_hybrid({name: getattr(scores, name) for name in rule.used}, rule.weights)
        return float(value) if value is not None else 0.0  # None only when all its weights are 0

    def fuse(self, scores: Scores) -> Scores:
        """Fill in ``hybrid``, ``rrf``, ``final``, mode, fusion and weights of a chunk's scores (in place)."""
        scores.hybrid = self.hybrid(scores)
        scores.rrf = self.rrf(scores.ranks)
        scores.mode, scores.fusion, scores.weights = self.mode, self.fusion, dict(self.weights)
        scores.final = self.final(scores)
        return scores

    # -- text -----------------------------------------------------------------------------------------

    def formula(self) -> str:
        """How ``final`` is computed, e.g. ``final = hybrid = (1.0 x dense + 0.3 x sparse) / 1.3``.

        With the cross-encoder it says which of its two numbers enters: ``rerank`` = sigmoid(logit) in a weighted
        mean, the order by the logit (``rerank_rank``) in rrf.
        """
        if self.kind == "rrf":
            text = "final = " + rrf_formula(self.rrf_k, self.used)
            return text + (RERANK_RANK_NOTE if self.rerank else "")
        if self.kind == "weighted":
            text = "final = " + hybrid_formula(self.weights, self.used, name=self.name)
            return text + (RERANK_NOTE if self.rerank else "")
        return f"final = {self.mode}"

    def worked(self, scores: Scores) -> str:
        """This chunk's ``final`` with its numbers filled in, e.g. ``final = (1 x 0.8123 + 0.3 x 2.1) / 1.3 = 0.93``.

        The expression is built from the chunk's scores by this rule; the value after it is the chunk's ``final``.
        """
        rule = self.for_chunk(scores)
        if rule.kind == "rrf":
            expression = " + ".join(f"1/({rule.rrf_k} + {rank})" for _, rank in scores.ranks.present()) or "0"
        elif rule.kind == "weighted":
            expression = _weighted_numbers(rule.weights, {name: getattr(scores, name) for name in rule.used})
        else:
            return f"final = {rule.mode} = {scores.final:.4f}"
        return f"final = {expression} = {scores.final:.4f}"

    def explain(self, scores: Scores) -> list[str]:
        """The lines of the web app's formula box: the formulas, then this chunk's numbers."""
        rule = self.for_chunk(scores)
        present = ("dense", "sparse", *(name for name in ("colbert", "rerank") if getattr(scores, name) is not None))
        lines = [rule.formula(), hybrid_formula(rule.weights, present)]
        if scores.rerank is not None:
            lines.append(f"rerank = sigmoid({float(scores.rerank_raw or 0.0):.4f}) = {scores.rerank:.4f}   "
                         f"rerank_rank = {scores.ranks.rerank}")
        if scores.hybrid is not None:
            numbers = _weighted_numbers(rule.weights, {name: getattr(scores, name) for name in present})
            lines.append(f"hybrid = {numbers} = {scores.hybrid:.4f}")
        ranks = list(scores.ranks.present())
        if ranks:
            lines.append(f"rrf = {' + '.join(f'1/({rule.rrf_k} + {r})' for _, r in ranks)} = {scores.rrf:.4f}   "
                         + ", ".join(f"{n}_rank = {r}" for n, r in ranks))
        lines.append(rule.worked(scores))
        return lines


RERANK_NOTE = "   (rerank = sigmoid(cross-encoder logit), 0..1)"
RERANK_RANK_NOTE = "   (rerank_rank = place in the cross-encoder's order)"


def _weighted_numbers(weights: Mapping[str, float], values: Mapping[str, float | None]) -> str:
    terms = " + ".join(f"{weights.get(name, 0.0):g} x {float(value or 0.0):.4f}" for name, value in values.items())
    return f"({terms}) / {sum(weights.get(name, 0.0) for name in values):g}"
