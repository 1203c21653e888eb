"""Counting tokens as the chunker does, loading only the embedding model's tokenizer where that is enough."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from rag.config import EmbeddingSettings
from rag.encoder.model_source import resolve_model_dir


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens of ``text`` without special tokens, as the chunker counts them."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def load_token_counter(settings: EmbeddingSettings) -> Callable[[str], int]:
    """``count_tokens`` with the model's tokenizer: for bge-m3 the tokenizer alone (a second, not the model's
    seconds); other backends load their encoder. Raises ModelNotAvailableError as loading the model would."""
    if settings.backend == "bge-m3":
        from transformers import AutoTokenizer

        return partial(count_tokens, AutoTokenizer.from_pretrained(str(resolve_model_dir(settings))))
    from rag.encoder import load_encoder

    return load_encoder(settings).count_tokens
