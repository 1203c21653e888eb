"""The reranking step of a search in the web app: the cross-encoder loaded with a spinner before the first search
that uses it, the spinner text while a question is reranked, and the line that says what the step cost."""

from __future__ import annotations

import streamlit as st

from rag.config import RetrievalSettings
from rag.rerank import load_reranker, loaded_reranker
from rag.retrieval import RetrievalResult
from ui.i18n import t
from ui.safe_markdown import escape_markdown

RERANKER_NAMES = {"colbert": "ColBERT", "cross-encoder": "cross-encoder"}


def load(retrieval: RetrievalSettings) -> None:
    """Load the cross-encoder of ``retrieval`` if it reranks and this process has not loaded it yet (a spinner names
    the model: loading takes seconds); nothing otherwise. ModelNotAvailableError says what to download."""
    config = retrieval.reranker
    if not retrieval.cross_encoder_rerank or loaded_reranker(config) is not None:
        return
    with st.spinner(t("loading_reranker", model=escape_markdown(config.model), device=config.device)):
        load_reranker(config)


def searching(retrieval: RetrievalSettings) -> str:
    """The spinner text of a search: with the cross-encoder it says how many candidates it reranks."""
    if retrieval.cross_encoder_rerank:
        return t("searching_reranking", n=retrieval.rerank_candidates)
    return t("searching")


def reranked(result: RetrievalResult, rerank_candidates: int) -> int:
    """How many candidates the search's reranker scored: the best ``rerank_candidates`` of its candidates."""
    return min(rerank_candidates, result.candidates) if result.rerank in RERANKER_NAMES else 0


def timing(result: RetrievalResult | None, rerank_candidates: int) -> str:
    """E.g. "cross-encoder: 20 candidates reranked in 16,812 ms of 17,050 ms"; "" when the search did not rerank."""
    if result is None or result.rerank not in RERANKER_NAMES:
        return ""
    return t("rerank_timing", reranker=RERANKER_NAMES[result.rerank], n=reranked(result, rerank_candidates),
             ms=result.timings.rerank_ms, total=result.timings.total_ms)
