"""How similar are two texts? dense, sparse, ColBERT and hybrid scores of one pair, and a level users can read.

``dense`` is the cosine similarity of the two texts' bge-m3 vectors (1.0 = same meaning, shown as a percent);
``sparse`` sums query weight x other weight over the tokens both texts share (0 = no shared word);
``colbert`` averages, over the tokens of text A, the similarity of the best-matching token of text B;
``hybrid`` = sum(w_i x s_i) / sum(w_i) over the three. The level comes from ``dense`` alone, with the
thresholds of ``levels`` (inclusive): >= very_similar -> "very similar / 极度相似", >= related ->
"related / 语义相关", else "unrelated / 不相关".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from rag.config import LevelSettings, WeightSettings
from rag.encoder import Encoder
from rag.errors import InvalidInputError
from rag.retrieval.scores import (
    colbert_score,
    dense_score,
    hybrid_formula,
    lexical_score,
    matched_terms,
    resolve_weights,
    weighted_hybrid,
)

LEVEL_LABELS = {
    "very_similar": "very similar / 极度相似",
    "related": "related / 语义相关",
    "unrelated": "unrelated / 不相关",
}


def level_for(dense: float, levels: LevelSettings | None = None) -> str:
    """The level key of a dense score: very_similar, related or unrelated (thresholds inclusive)."""
    levels = levels or LevelSettings()
    if dense >= levels.very_similar:
        return "very_similar"
    if dense >= levels.related:
        return "related"
    return "unrelated"


def level_label(level: str) -> str:
    """The bilingual label of a level key, e.g. ``related / 语义相关``."""
    return LEVEL_LABELS[level]


@dataclass(frozen=True)
class SimilarityResult:
    """The scores of text A against text B; see the module docstring for what each means."""

    text_a: str
    text_b: str
    dense: float
    sparse: float
    colbert: float
    hybrid: float
    dense_percent: float
    level: str
    label: str
    weights: dict[str, float]
    formula: str
    matched_terms: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_texts(
    encoder: Encoder,
    a: str,
    b: str,
    weights: WeightSettings | Mapping[str, float] | None = None,
    levels: LevelSettings | None = None,
) -> SimilarityResult:
    """Score text ``a`` against text ``b`` (ColBERT and the sparse terms are read from A's side)."""
    for name, text in (("A", a), ("B", b)):
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError(
                f"Text {name} is empty: give two non-empty texts to compare, e.g. "
                '`rag similarity "我喜欢看书" "阅读使我快乐"`.'
            )
    w = resolve_weights(weights)
    if sum(w.values()) <= 0:
        raise InvalidInputError("The weights of dense, sparse and colbert are all 0; give at least one a positive "
                                "weight (retrieval.weights).")
    encoded = encoder.encode([a, b], colbert=True)
    assert encoded.colbert is not None
    dense = dense_score(encoded.dense[0], encoded.dense[1])
    sparse = lexical_score(encoded.sparse[0], encoded.sparse[1])
    colbert = colbert_score(encoded.colbert[0], encoded.colbert[1])
    hybrid = weighted_hybrid({"dense": dense, "sparse": sparse, "colbert": colbert}, w)
    assert hybrid is not None  # the weights were checked above
    level = level_for(dense, levels)
    return SimilarityResult(
        text_a=a, text_b=b, dense=dense, sparse=sparse, colbert=colbert, hybrid=hybrid,
        dense_percent=dense * 100.0, level=level, label=level_label(level), weights=w,
        formula=hybrid_formula(w, ("dense", "sparse", "colbert")),
        matched_terms=matched_terms(encoded.sparse[0], encoded.sparse[1], encoder.tokenizer),
    )
