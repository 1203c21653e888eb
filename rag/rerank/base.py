"""The reranker interface: a query and passages in, one relevance score per passage out."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from rag.encoder.base import BatchCallback


def sigmoid(logit: float) -> float:
    """1 / (1 + e^-logit), as FlagEmbedding's ``compute_score(normalize=True)`` maps a logit to 0..1."""
    return float(1 / (1 + math.exp(-logit))) if logit >= -700 else 0.0


@dataclass(frozen=True)
class RerankScore:
    """A cross-encoder's verdict on one (query, passage) pair.

    ``raw``: the model's logit (unbounded; higher = more relevant; comparable within one model only).
    ``normalised``: sigmoid(raw), 0..1, the value fusion uses (``Scores.rerank``).
    """

    raw: float
    normalised: float

    @classmethod
    def of(cls, raw: float) -> RerankScore:
        return cls(float(raw), sigmoid(float(raw)))


class Reranker(ABC):
    """A loaded cross-encoder. ``pairs_scored`` counts every pair passed through the model."""

    model_name: str
    device: str
    max_length: int

    def __init__(self) -> None:
        self.pairs_scored = 0

    @abstractmethod
    def score(
        self, query: str, passages: Sequence[str], *, on_batch: BatchCallback | None = None
    ) -> list[RerankScore]:
        """One score per passage, in input order; ``on_batch`` reports (pairs, tokens) after each forward pass."""
