"""Retrieval: hybrid dense + sparse (+ ColBERT) search with exact, explained scores."""

from rag.retrieval.filters import SearchFilters
from rag.retrieval.results import RetrievalResult, Timings
from rag.retrieval.retriever import HybridRetriever, final_formula
from rag.retrieval.scores import hybrid_formula, matched_terms

__all__ = [
    "HybridRetriever", "RetrievalResult", "SearchFilters", "Timings", "final_formula", "hybrid_formula",
    "matched_terms",
]
