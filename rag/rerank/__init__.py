"""Cross-encoder reranking. ``load_reranker`` returns one shared instance per process and settings.

Nothing is loaded until a search with ``retrieval.rerank: cross-encoder`` asks for it;
``loaded_rerankers`` says what this process holds (the status block, the tests).
"""

from __future__ import annotations

import threading

from rag.config import RerankerSettings
from rag.rerank.base import Reranker, RerankScore, sigmoid
from rag.rerank.flag_reranker import FlagCrossEncoder

__all__ = ["FlagCrossEncoder", "RerankScore", "Reranker", "create_reranker", "load_reranker", "loaded_reranker",
           "loaded_rerankers", "sigmoid"]

_LOCK = threading.Lock()
_LOADED: dict[str, Reranker] = {}


def create_reranker(settings: RerankerSettings) -> Reranker:
    """A new cross-encoder (loading takes seconds; prefer ``load_reranker``)."""
    return FlagCrossEncoder(settings)


def load_reranker(settings: RerankerSettings) -> Reranker:
    """Load the cross-encoder once per process for these settings."""
    key = settings.model_dump_json()
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = create_reranker(settings)
        return _LOADED[key]


def loaded_reranker(settings: RerankerSettings) -> Reranker | None:
    """The cross-encoder of these settings if this process has loaded it, else None (nothing is loaded)."""
    with _LOCK:
        return _LOADED.get(settings.model_dump_json())


def loaded_rerankers() -> list[Reranker]:
    """The cross-encoders this process has loaded, oldest first."""
    with _LOCK:
        return list(_LOADED.values())
