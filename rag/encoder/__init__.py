"""Embedding encoders. ``load_encoder`` returns one shared instance per process and settings."""

from __future__ import annotations

import threading

from rag.config import EmbeddingSettings
from rag.encoder.base import EncodedBatch, Encoder, SparseVector
from rag.encoder.bge_m3 import BGEM3Encoder

__all__ = ["BGEM3Encoder", "EncodedBatch", "Encoder", "SparseVector", "load_encoder"]

_LOCK = threading.Lock()
_LOADED: dict[str, Encoder] = {}


def load_encoder(settings: EmbeddingSettings) -> Encoder:
    """Load the encoder once per process for these settings (the model takes seconds to load)."""
    key = settings.model_dump_json()
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = BGEM3Encoder(settings)
        return _LOADED[key]
