"""The encoder interface: texts in, dense + sparse (+ ColBERT) representations out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SparseVector = dict[int, float]
BatchCallback = Callable[[int, int], None]
"""Called after each forward pass with (texts in the batch, tokens in the batch)."""


@dataclass
class EncodedBatch:
    """Representations of a list of texts, in input order.

    dense: float32 array (n, dim), L2-normalised, so an inner product is a cosine similarity.
    sparse: per text, {token_id: weight}; the lexical score of two texts is the sum over shared tokens
        of the product of their weights (bge-m3's lexical matching score).
    colbert: per text, a float32 array (tokens, dim) of normalised token vectors, when asked for.
    token_counts: tokens each text was encoded with (after truncation, special tokens included).
    """

    dense: np.ndarray
    sparse: list[SparseVector]
    colbert: list[np.ndarray] | None
    token_counts: list[int]


class Encoder(ABC):
    """A loaded embedding model. ``texts_encoded`` counts every text passed through the model."""

    model_name: str
    dim: int
    tokenizer: Any
    device: str

    def __init__(self) -> None:
        self.texts_encoded = 0

    @abstractmethod
    def encode(
        self, texts: Sequence[str], *, colbert: bool = False, on_batch: BatchCallback | None = None
    ) -> EncodedBatch:
        """Encode ``texts``; ``on_batch`` reports progress after each forward pass."""

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` without special tokens, as the chunker counts them."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
