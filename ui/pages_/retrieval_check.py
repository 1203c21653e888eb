"""Retrieval check: the chunks a query retrieves, with all their scores, without the LLM."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from rag.config import FUSIONS, Settings
from rag.errors import InvalidInputError, RagError
from rag.retrieval import RetrievalResult
from ui import resources
from ui.cards import render_cards, render_downloads
from ui.exports import doc_dict, rows
from ui.i18n import t
from ui.safe_markdown import escape_markdown
from ui.state import MODES, app_settings, options, retrieval_settings

RESULT_KEY = "rc_result"


def table(result: RetrievalResult) -> None:
    """A compact table, one row per chunk, scores as progress bars."""
    data = pd.DataFrame(rows(result.query, [doc_dict(d) for d in result.documents]))
    data["text"] = data["text"].str.slice(0, 160)
    sparse_max = max(1.0, float(data["sparse"].max()))
    column = st.column_config
    st.dataframe(
        data[["rank", "source", "chunk_index", "dense", "sparse", "colbert", "hybrid", "final", "text"]],
        hide_index=True, key="rc_table",
        column_config={
            "dense": column.ProgressColumn("dense", min_value=0.0, max_value=1.0, format="%.3f"),
            "sparse": column.ProgressColumn("sparse", min_value=0.0, max_value=sparse_max, format="%.4f"),
            "colbert": column.ProgressColumn("colbert", min_value=0.0, max_value=1.0, format="%.3f"),
            "hybrid": column.ProgressColumn("hybrid", min_value=0.0, max_value=max(1.0, float(
                data["hybrid"].max() or 0)), format="%.3f"),
            "final": column.NumberColumn("final", format="%.4f"),
        },
    )


def search(settings: Settings) -> None:
    opts = options(settings)
    ss = st.session_state
    query = ss.get("rc_query", "")
    if not query.strip():
        ss.pop(RESULT_KEY, None)
        st.error(t("empty_query"))
        return
    weights = {name: float(ss[f"rc_w_{name}"]) for name in ("dense", "sparse", "colbert")}
    retriever = resources.retriever(settings, opts.kb or "", retrieval_settings(settings, opts))
    try:
        ss[RESULT_KEY] = retriever.search(query, top_k=int(ss["rc_top_k"]), mode=ss["rc_mode"],
                                          fusion=ss["rc_fusion"], weights=weights)
    except InvalidInputError as exc:
        ss.pop(RESULT_KEY, None)
        st.error(escape_markdown(str(exc)))


def page() -> None:
    settings = app_settings()
    opts = options(settings)
    st.title(t("rc_title"))
    st.caption(t("rc_caption"))
    if not opts.kb:
        st.info(t("no_kb"))
        return
    ss = st.session_state
    ss.setdefault("rc_mode", opts.mode)
    ss.setdefault("rc_top_k", opts.top_k)
    ss.setdefault("rc_fusion", settings.retrieval.fusion)
    for name, value in settings.retrieval.weights.model_dump().items():
        ss.setdefault(f"rc_w_{name}", float(value))
    st.text_input(t("query"), key="rc_query")
    left, middle, right = st.columns(3)
    left.radio(t("mode"), MODES, key="rc_mode", horizontal=True)
    middle.number_input(t("top_k"), min_value=1, max_value=200, step=1, key="rc_top_k")
    right.selectbox(t("fusion"), FUSIONS, key="rc_fusion")
    for column, name in zip(st.columns(3), ("dense", "sparse", "colbert"), strict=True):
        column.number_input(t("weight", name=name), min_value=0.0, max_value=10.0, step=0.1, key=f"rc_w_{name}")
    if st.button(t("search"), key="rc_search", type="primary"):
        try:
            search(settings)
        except RagError as exc:
            ss.pop(RESULT_KEY, None)
            st.error(escape_markdown(str(exc)))
    result: RetrievalResult | None = ss.get(RESULT_KEY)
    if result is None:
        return
    st.caption(f"{result.formula} · " + t("timings", n=len(result.documents), candidates=result.candidates,
                                          ms=result.timings.total_ms))
    docs = [doc_dict(d) for d in result.documents]
    tab_table, tab_cards = st.tabs([t("table_view"), t("cards_view")])
    with tab_table:
        if docs:
            table(result)
        render_downloads(docs, query=result.query, key="rc", rrf_k=settings.retrieval.rrf_k,
                         **{k: v for k, v in result.to_dict().items() if k not in ("documents", "query")})
    with tab_cards:
        render_cards(docs, query=result.query, kb=result.kb, key="rc", settings=settings)


page()
