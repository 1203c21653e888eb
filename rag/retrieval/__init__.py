"""Retrieval: hybrid dense + sparse (+ ColBERT) search with exact, explained scores.

The score model (Scores, Ranks, ScoreFusion, Provenance) loads without pymilvus, so the CLI can render and
report errors quickly; the retriever and what it returns are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rag.retrieval.chunk_scores import Ranks, Scores
from rag.retrieval.fusion import ScoreFusion
from rag.retrieval.provenance import Provenance
from rag.retrieval.scores import hybrid_formula, matched_terms

if TYPE_CHECKING:
    from rag.retrieval.filters import SearchFilters
    from rag.retrieval.multi_kb import MultiKBRetriever
    from rag.retrieval.results import RetrievalResult, Timings
    from rag.retrieval.retriever import HybridRetriever

_LAZY = {
    "HybridRetriever": "rag.retrieval.retriever", "RetrievalResult": "rag.retrieval.results",
    "Timings": "rag.retrieval.results", "SearchFilters": "rag.retrieval.filters",
    "MultiKBRetriever": "rag.retrieval.multi_kb",
}

__all__ = [
    "HybridRetriever", "MultiKBRetriever", "Provenance", "Ranks", "RetrievalResult", "ScoreFusion", "Scores",
    "SearchFilters", "Timings", "hybrid_formula", "matched_terms",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
