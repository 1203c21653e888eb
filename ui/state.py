"""The session's settings and sidebar choices, read the same way by every page."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from rag.config import MODES as RETRIEVAL_MODES
from rag.config import LLMSettings, Mode, Rerank, RetrievalSettings, Settings, load_settings, with_overrides

# The fusion and weights applied to this session (e.g. learned on the Evaluation page): {"fusion", "weights"}.
SESSION_FUSION = "session_fusion"
# The Retrieval check page's controls seeded from the session's retrieval settings (re-seeded after a change).
RETRIEVAL_CHECK_CONTROLS = ("rc_mode", "rc_fusion", "rc_w_dense", "rc_w_sparse", "rc_w_colbert")

# The retrieval modes as the sidebar offers them: the default mode first.
MODES: tuple[Mode, ...] = tuple(sorted(RETRIEVAL_MODES, key=lambda mode: mode != RetrievalSettings().mode))


def app_settings() -> Settings:
    """Settings from configs/default.yaml, $RAG_CONFIG and RAG_* environment variables (read every run)."""
    return load_settings()


@dataclass(frozen=True)
class Options:
    """What the sidebar selects: knowledge base, retrieval options and the LLM model."""

    kb: str | None
    top_k: int
    mode: Mode
    min_score: float
    rerank: Rerank
    rerank_candidates: int
    model: str

    @property
    def colbert(self) -> bool:
        """Whether ColBERT reranks (the sidebar's reranker choice)."""
        return self.rerank == "colbert"


def init_defaults(settings: Settings) -> None:
    """Seed the sidebar's widget state from the settings, once per session."""
    ss = st.session_state
    r = settings.retrieval
    for key, value in (("opt_lang", settings.app.language), ("opt_top_k", r.top_k), ("opt_mode", r.mode),
                       ("opt_min_score", float(r.min_score)), ("opt_rerank", r.rerank),
                       ("opt_rerank_candidates", r.rerank_candidates), ("opt_model", settings.llm.model)):
        ss.setdefault(key, value)


def options(settings: Settings) -> Options:
    """The sidebar's current choices (settings' values where the sidebar has not been drawn)."""
    ss = st.session_state
    r = settings.retrieval
    return Options(
        kb=ss.get("opt_kb") or None,
        top_k=int(ss.get("opt_top_k", r.top_k)),
        mode=ss.get("opt_mode", r.mode),
        min_score=float(ss.get("opt_min_score", r.min_score)),
        rerank=ss.get("opt_rerank", r.rerank),
        rerank_candidates=int(ss.get("opt_rerank_candidates", r.rerank_candidates)),
        model=str(ss.get("opt_model") or settings.llm.model),
    )


def retrieval_settings(settings: Settings, opts: Options) -> RetrievalSettings:
    """The retrieval settings with the sidebar's top-k, mode, min score and reranker (and how many candidates it
    reranks), and the fusion and weights applied to the session (:func:`apply_session_fusion`) if any."""
    retrieval = settings.retrieval
    applied = st.session_state.get(SESSION_FUSION)
    if isinstance(applied, dict):
        retrieval = with_overrides(retrieval, fusion=applied["fusion"], weights=applied["weights"])
    return retrieval.model_copy(update={
        "top_k": opts.top_k, "mode": opts.mode, "min_score": opts.min_score,
        "rerank": opts.rerank, "rerank_candidates": opts.rerank_candidates,
    })


def apply_session_fusion(retrieval: RetrievalSettings) -> None:
    """Use the mode, fusion and weights of ``retrieval`` for the rest of the session: chat, Retrieval check and
    evaluation. Call it from a button's callback (it sets the sidebar's mode before the sidebar is drawn)."""
    ss = st.session_state
    ss[SESSION_FUSION] = {"fusion": retrieval.fusion, "weights": retrieval.weights.model_dump()}
    ss["opt_mode"] = retrieval.mode
    for key in RETRIEVAL_CHECK_CONTROLS:
        ss.pop(key, None)


def reset_session_fusion(settings: Settings) -> None:
    """Back to the configured mode, fusion and weights (undoes :func:`apply_session_fusion`); a button's callback."""
    ss = st.session_state
    ss.pop(SESSION_FUSION, None)
    ss["opt_mode"] = settings.retrieval.mode
    for key in RETRIEVAL_CHECK_CONTROLS:
        ss.pop(key, None)


def llm_settings(settings: Settings, opts: Options) -> LLMSettings:
    """The LLM settings with the model picked in the sidebar."""
    return settings.llm.model_copy(update={"model": opts.model})
