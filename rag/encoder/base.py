"""The encoder interface: texts in, dense + sparse (+ ColBERT) representations out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.encoder.tokens import count_tokens

SparseVector = dict[int, float]
BatchCallback = Callable[[int, int], None]
"""Called after each forward pass with (texts in the batch, tokens in the batch).

Texts answered from the encoding cache are reported once, before any forward pass, as (texts, 0): they
advance a progress bar but add no tokens, so a tokens/s rate measures the model alone.
"""


@dataclass
class EncodedBatch:
    """Representations of a list of texts, in input order.

    dense: float32 array (n, dim), L2-normalised, so an inner product is a cosine similarity.
    sparse: per text, {token_id: weight}; the lexical score of two texts is the sum over shared tokens
        of the product of their weights (bge-m3's lexical matching score). Empty dicts for encoders
        without a sparse head (``Encoder.supports_sparse`` is False).
    colbert: per text, a float32 array (tokens, dim) of normalised token vectors, when asked for.
    token_counts: tokens each text was encoded with (after truncation, special tokens included).
    """

    dense: np.ndarray
    sparse: list[SparseVector]
    colbert: list[np.ndarray] | None
    token_counts: list[int]


class Encoder(ABC):
    """A loaded embedding model. ``texts_encoded`` counts every text passed through the model.

    ``supports_sparse`` / ``supports_colbert`` say which representations are real: a dense-only model
    returns empty sparse vectors and refuses ColBERT, so retrieval can report those modes unavailable.
    ``fingerprint`` identifies the weights and numerics (an int8 model has its own); collections and
    the encoding cache are keyed by it.
    """

    backend: str
    model_name: str
    fingerprint: str
    dim: int
    max_length: int
    quantize: str = "none"
    tokenizer: Any
    device: str
    supports_sparse: bool = False
    supports_colbert: bool = False

    def __init__(self) -> None:
        self.texts_encoded = 0

    @abstractmethod
    def encode(
        self, texts: Sequence[str], *, colbert: bool = False, on_batch: BatchCallback | None = None
    ) -> EncodedBatch:
        """Encode ``texts``; ``on_batch`` reports progress after each forward pass."""

    def prepare(self) -> None:
        """Make the model ready to encode: a deferred one (rag.encoder.deferred) loads here, so that the time of
        the next ``encode`` is the model's."""
        return None

    def _encode_with(
        self, inner: Encoder, texts: Sequence[str], *, colbert: bool, on_batch: BatchCallback | None
    ) -> EncodedBatch:
        """``inner.encode`` for an encoder that wraps ``inner``; the texts ``inner`` passes through its model count
        as this one's (``texts_encoded``)."""
        before = inner.texts_encoded
        try:
            return inner.encode(texts, colbert=colbert, on_batch=on_batch)
        finally:
            self.texts_encoded += inner.texts_encoded - before

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` without special tokens, as the chunker counts them."""
        return count_tokens(self.tokenizer, text)


def plan_batches(lengths: Sequence[int], batch_size: int, batch_tokens: int = 0) -> list[list[int]]:
    """Group text indices into forward passes, longest first so that each batch pads little.

    With ``batch_tokens`` 0 every batch holds ``batch_size`` texts. Otherwise a batch grows while its padded
    size (texts x longest text) stays within ``batch_tokens``: many short texts share one pass, long ones
    go a few at a time, and memory stays bounded. A text longer than the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    if batch_tokens <= 0:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and longest * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def pad_batch(rows: Sequence[Sequence[int]], pad_value: int, side: str = "right") -> tuple[np.ndarray, np.ndarray]:
    """``rows`` of token ids padded to the longest into an int64 array, and its attention mask (1 = token).

    The same arrays as ``tokenizer.pad(..., return_tensors="pt")``, which converts the nested Python lists
    element by element (transformers' ``flatten``): under cProfile a quarter of a small model's encoding time.
    ``side`` is the tokenizer's ``padding_side``.
    """
    lengths = np.fromiter((len(row) for row in rows), np.int64, len(rows))
    width = int(lengths.max(initial=0))
    ids = np.full((len(rows), width), pad_value, np.int64)
    for r, row in enumerate(rows):
        if side == "left":
            ids[r, width - len(row) :] = row
        else:
            ids[r, : len(row)] = row
    positions = np.arange(width)
    mask = positions >= width - lengths[:, None] if side == "left" else positions < lengths[:, None]
    return ids, mask.astype(np.int64)


def padded_inputs(
    tokenizer: Any, input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]] | None = None
) -> dict[str, np.ndarray]:
    """A batch's model inputs (``input_ids``, ``attention_mask``, and ``token_type_ids`` when given) as int64
    arrays, padded with ``pad_batch`` on the tokenizer's side with its pad ids."""
    side = tokenizer.padding_side
    ids, mask = pad_batch(input_ids, tokenizer.pad_token_id, side)
    inputs = {"input_ids": ids, "attention_mask": mask}
    if token_type_ids is not None:
        inputs["token_type_ids"] = pad_batch(token_type_ids, tokenizer.pad_token_type_id, side)[0]
    return inputs
