"""Retrieval check: the chunks a query retrieves, with all their scores, without the LLM; and "explain a miss":
why a chunk was or was not retrieved with the page's settings, with checked fixes the user can apply."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from rag.config import FUSIONS, RetrievalSettings, Settings, with_overrides
from rag.errors import InvalidInputError, RagError
from rag.retrieval import RetrievalResult, SearchFilters
from rag.store.knowledge_base import quote
from rag.workbench.explain import Explanation, explain, explain_document
from ui import explain_view, rerank_view, resources, search_scope
from ui.cards import render_cards, render_downloads
from ui.exports import doc_dict, rows
from ui.i18n import t
from ui.safe_markdown import escape_markdown
from ui.state import MODES, Options, app_settings, options, retrieval_settings

RESULT_KEY = "rc_result"
EXPLAIN_KEY = "rcx_result"
EXPLAIN_REQUEST = "explain_request"  # the cross-page contract: {"kb", "query", "chunk_id"} set by another page
RERUN_KEY = "rcx_rerun"  # an Apply button changed a setting: search and explain again
RERANKED_KEY = "rc_rerank_candidates"  # the rerank_candidates of the last search, for its timing line


def table(result: RetrievalResult) -> None:
    """A compact table, one row per chunk, scores as progress bars."""
    data = pd.DataFrame(rows(result.query, [doc_dict(d) for d in result.documents]))
    data["text"] = data["text"].str.slice(0, 160)
    sparse_max = max(1.0, float(data["sparse"].max()))
    column = st.column_config
    rerank = ["rerank"] if "rerank" in data.columns else []  # the cross-encoder's sigmoid, when it reranked
    st.dataframe(
        data[["rank", "source", "chunk_index", "dense", "sparse", "colbert", *rerank, "hybrid", "final", "text"]],
        hide_index=True, key="rc_table",
        column_config={
            "rerank": column.ProgressColumn("rerank", min_value=0.0, max_value=1.0, format="%.3f"),
            "dense": column.ProgressColumn("dense", min_value=0.0, max_value=1.0, format="%.3f"),
            "sparse": column.ProgressColumn("sparse", min_value=0.0, max_value=sparse_max, format="%.4f"),
            "colbert": column.ProgressColumn("colbert", min_value=0.0, max_value=1.0, format="%.3f"),
            "hybrid": column.ProgressColumn("hybrid", min_value=0.0, max_value=max(1.0, float(
                data["hybrid"].max() or 0)), format="%.3f"),
            "final": column.NumberColumn("final", format="%.4f"),
        },
    )


def search(settings: Settings, scope: search_scope.Scope | None = None) -> None:
    """Run the page's search on the scope's knowledge bases with its filters (the active knowledge base without)."""
    opts = options(settings)
    ss = st.session_state
    query = ss.get("rc_query", "")
    if not query.strip():
        ss.pop(RESULT_KEY, None)
        st.error(t("empty_query"))
        return
    weights = {name: float(ss[f"rc_w_{name}"]) for name in ("dense", "sparse", "colbert")}
    retrieval = retrieval_settings(settings, opts)
    retriever = (search_scope.retriever(settings, scope, retrieval) if scope is not None
                 else resources.retriever(settings, opts.kb or "", retrieval))
    rerank_view.load(retrieval)
    try:
        with st.spinner(rerank_view.searching(retrieval)):
            ss[RESULT_KEY] = retriever.search(query, top_k=int(ss["rc_top_k"]), mode=ss["rc_mode"],
                                              fusion=ss["rc_fusion"], weights=weights)
        ss[RERANKED_KEY] = retrieval.rerank_candidates
    except InvalidInputError as exc:
        ss.pop(RESULT_KEY, None)
        st.error(escape_markdown(str(exc)))


def page_settings(settings: Settings, opts: Options) -> RetrievalSettings:
    """The retrieval settings the page's controls select (mode, top_k, fusion, weights) over the sidebar's."""
    ss = st.session_state
    weights = {name: float(ss[f"rc_w_{name}"]) for name in ("dense", "sparse", "colbert")}
    return with_overrides(retrieval_settings(settings, opts), top_k=int(ss["rc_top_k"]), mode=ss["rc_mode"],
                          fusion=ss["rc_fusion"], weights=weights)


def run_explain(settings: Settings, opts: Options, filters: SearchFilters | None = None) -> None:
    """Explain the chunk (or every chunk of the document) in the chunk box for the query box's query, with the
    search's ``filters`` (the scope popover's), so that a chunk they leave out is said to be lost to them."""
    ss = st.session_state
    ss.pop(EXPLAIN_KEY, None)
    target = str(ss.get("rcx_target", "")).strip()
    if not target:
        st.error(t("rcx_empty_target"))
        return
    cfg = page_settings(settings, opts)
    retriever = resources.retriever(settings, opts.kb or "", cfg)
    if filters is not None:
        retriever = retriever.model_copy(update={"filters": filters})
    rerank_view.load(cfg)
    query = str(ss.get("rc_query", ""))
    kb = retriever.knowledge_base
    if kb.rows(f"id == {quote(target)}", ["id"], limit=1):
        results, document = [explain(retriever, query, target)], False
    elif kb.rows(f"source == {quote(target)}", ["id"], limit=1):
        results, document = explain_document(retriever, query, target), True
    else:
        st.error(t("rcx_not_found", kb=escape_markdown(kb.name), target=escape_markdown(target)))
        return
    used = (f"mode {cfg.mode} · top_k {cfg.top_k} · fusion {cfg.fusion} · weights "
            f"{cfg.weights.model_dump()} · min_score {cfg.min_score:g} · candidate_factor {cfg.candidate_factor}"
            + (f" · filters {filters.expression()}" if filters is not None else ""))
    ss[EXPLAIN_KEY] = {"results": results, "document": document, "settings": used}


def _apply(controls: dict[str, Any]) -> None:
    """An Apply button: set the controls to the fix's values, then search and explain again with them."""
    st.session_state.update(controls)
    st.session_state[RERUN_KEY] = True


def take_request(opts: Options) -> bool:
    """Fill the query and chunk boxes from another page's explain_request; True when it should be explained now."""
    ss = st.session_state
    request = ss.pop(EXPLAIN_REQUEST, None)
    if not isinstance(request, dict):
        return False
    kb = str(request.get("kb") or "")
    if kb and kb != opts.kb:
        st.warning(t("rcx_kb_missing", kb=escape_markdown(kb), active=escape_markdown(opts.kb or "")))
    ss["rc_query"] = str(request.get("query") or "")
    ss["rcx_target"] = str(request.get("chunk_id") or "")
    ss.pop(EXPLAIN_KEY, None)
    return bool(ss["rc_query"].strip())


def explain_section(settings: Settings, opts: Options, now: bool, filters: SearchFilters | None = None) -> None:
    """The "explain a miss" part: the chunk box, the button, and the explanation (of one chunk or a document), with
    the search's ``filters``."""
    ss = st.session_state
    st.divider()
    st.subheader(t("rcx_title"))
    st.caption(t("rcx_caption"))
    st.text_input(t("rcx_target"), key="rcx_target")
    if st.button(t("rcx_button"), key="rcx_explain") or now:
        try:
            run_explain(settings, opts, filters)
        except RagError as exc:
            ss.pop(EXPLAIN_KEY, None)
            st.error(escape_markdown(str(exc)))
    state = ss.get(EXPLAIN_KEY)
    if state is None:
        return
    results: list[Explanation] = state["results"]
    st.caption(escape_markdown(state["settings"]))
    chosen = results[0]
    if state["document"]:
        st.markdown(f"**{t('rcx_document', source=escape_markdown(chosen.source))}**")
        st.dataframe(explain_view.document_table(results), hide_index=True, key="rcx_document")
        best = min(range(len(results)), key=lambda i: -results[i].scores.final)
        index = st.selectbox(t("rcx_pick"), range(len(results)), index=best, key="rcx_pick",
                             format_func=lambda i: t("chunk", n=results[i].chunk_index + 1))
        chosen = results[int(index)]
    explain_view.show(chosen, _apply)


def page() -> None:
    settings = app_settings()
    opts = options(settings)
    st.title(t("rc_title"))
    st.caption(t("rc_caption"))
    if not opts.kb:
        st.info(t("no_kb"))
        return
    ss = st.session_state
    session = retrieval_settings(settings, opts)  # with the fusion applied to the session, if any
    ss.setdefault("rc_mode", opts.mode)
    ss.setdefault("rc_top_k", opts.top_k)
    ss.setdefault("rc_fusion", session.fusion)
    for name, value in session.weights.model_dump().items():
        ss.setdefault(f"rc_w_{name}", float(value))
    explain_now = take_request(opts)
    rerun = bool(ss.pop(RERUN_KEY, False))
    st.text_input(t("query"), key="rc_query")
    left, middle, right = st.columns(3)
    left.radio(t("mode"), MODES, key="rc_mode", horizontal=True)
    middle.number_input(t("top_k"), min_value=1, max_value=200, step=1, key="rc_top_k")
    right.selectbox(t("fusion"), FUSIONS, key="rc_fusion")
    for column, name in zip(st.columns(3), ("dense", "sparse", "colbert"), strict=True):
        column.number_input(t("weight", name=name), min_value=0.0, max_value=10.0, step=0.1, key=f"rc_w_{name}")
    try:
        scope = search_scope.render(settings, opts.kb, "rc")
    except RagError as exc:
        scope = None
        st.error(escape_markdown(str(exc)))
    if (st.button(t("search"), key="rc_search", type="primary") or rerun) and scope is not None:
        try:
            search(settings, scope)
        except RagError as exc:
            ss.pop(RESULT_KEY, None)
            st.error(escape_markdown(str(exc)))
    show_result(settings)
    explain_section(settings, opts, explain_now or rerun, scope.filters if scope is not None else None)


def show_result(settings: Settings) -> None:
    """The last search's chunks: a table and the score cards, with the downloads."""
    ss = st.session_state
    result: RetrievalResult | None = ss.get(RESULT_KEY)
    if result is None:
        return
    st.caption(f"{result.formula} · " + t("timings", n=len(result.documents), candidates=result.candidates,
                                          ms=result.timings.total_ms))
    if rerank_line := rerank_view.timing(result, int(ss.get(RERANKED_KEY, settings.retrieval.rerank_candidates))):
        st.caption(escape_markdown(rerank_line))
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
