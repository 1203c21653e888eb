"""Embedding encoders. ``load_encoder`` returns one shared instance per process and settings.

Backends (``embedding.backend``): ``bge-m3`` (dense + sparse + ColBERT, FlagEmbedding) and
``sentence-transformers`` (dense only). ``embedding.quantize: int8`` runs either with dynamic int8 on the CPU.
With a data directory and ``embedding.cache: true`` the encoder is wrapped in a ``CachedEncoder``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import EmbeddingSettings
from rag.encoder.base import EncodedBatch, Encoder, SparseVector
from rag.encoder.cache import CachedEncoder, EncodingCache, cache_path
from rag.encoder.tokens import load_token_counter

if TYPE_CHECKING:
    from rag.encoder.bge_m3 import BGEM3Encoder
    from rag.encoder.sentence_transformer import SentenceTransformerEncoder

# The model classes import torch and FlagEmbedding (seconds): loaded on first use (PEP 562), so that a command that
# needs only the tokenizer (`rag chunks`) does not pay for them.
_MODEL_CLASSES = {
    "BGEM3Encoder": "rag.encoder.bge_m3", "SentenceTransformerEncoder": "rag.encoder.sentence_transformer",
}

__all__ = [
    "BGEM3Encoder", "CachedEncoder", "EncodedBatch", "Encoder", "EncodingCache", "SentenceTransformerEncoder",
    "SparseVector", "cache_path", "create_encoder", "load_encoder", "load_token_counter",
]

_LOCK = threading.Lock()
_LOADED: dict[str, Encoder] = {}
_NOT_MODEL_FIELDS = {"cache"}


def __getattr__(name: str) -> Any:
    if name not in _MODEL_CLASSES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODEL_CLASSES[name]), name)


def create_encoder(settings: EmbeddingSettings) -> Encoder:
    """A new, uncached encoder for ``settings.backend`` (loading takes seconds; prefer ``load_encoder``)."""
    if settings.backend == "sentence-transformers":
        from rag.encoder.sentence_transformer import SentenceTransformerEncoder

        return SentenceTransformerEncoder(settings)
    from rag.encoder.bge_m3 import BGEM3Encoder

    return BGEM3Encoder(settings)


def load_encoder(
    settings: EmbeddingSettings, *, data_dir: str | Path | None = None, deferred: bool = False,
    on_load: Callable[[], None] | None = None,
) -> Encoder:
    """Load the encoder once per process for these settings (the model takes seconds to load).

    With ``data_dir`` (pass ``settings.app.data_dir``) and ``settings.cache`` true, the result encodes through
    the SQLite encoding cache under that folder; without ``data_dir`` it is the bare model. ``deferred`` (bge-m3,
    not loaded yet): the model is loaded on the first ``encode``, ``on_load`` called just before (see
    rag.encoder.deferred), so a run that encodes nothing (an unchanged folder) does not load it.
    """
    model_key = settings.model_dump_json(exclude=_NOT_MODEL_FIELDS)
    with _LOCK:
        if deferred and settings.backend == "bge-m3" and model_key not in _LOADED:
            from rag.encoder.deferred import DeferredEncoder

            encoder: Encoder = DeferredEncoder(settings, lambda: load_encoder(settings), on_load)
            if data_dir is None or not settings.cache:
                return encoder
            return CachedEncoder(encoder, EncodingCache(cache_path(data_dir).resolve()))
        if model_key not in _LOADED:
            _LOADED[model_key] = create_encoder(settings)
        encoder = _LOADED[model_key]
        if data_dir is None or not settings.cache:
            return encoder
        path = cache_path(data_dir).resolve()
        key = f"{model_key}|{path}"
        if key not in _LOADED:
            _LOADED[key] = CachedEncoder(encoder, EncodingCache(path))
        return _LOADED[key]
