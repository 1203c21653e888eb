"""Chunk browser: the active knowledge base's documents and chunks as stored, a page at a time
(rag.workbench.ChunkBrowser), each chunk with its id to copy and a button that explains it against a query."""

from __future__ import annotations

from html import escape
from pathlib import Path

import streamlit as st

from rag.workbench import ChunkBrowser, ChunkPage, ChunkView
from ui import resources
from ui.i18n import t
from ui.state import app_settings, options

PAGES = Path(__file__).resolve().parent
DOCUMENTS_PER_PAGE = 20
CHUNKS_PER_PAGE = 10
EXPLAIN_REQUEST = "explain_request"  # the cross-page contract: read (and popped) by the Retrieval check page


def chunk_html(chunk: ChunkView) -> str:
    """One chunk: where it comes from (file, chunk number, page or heading, tokens) and its full text, escaped."""
    origin = chunk.provenance
    parts = [origin.source, t("chunk", n=origin.chunk_index + 1)]
    if origin.has_page:
        parts.append(t(origin.page_unit, n=origin.page))  # a PowerPoint chunk's page is its slide
    if origin.heading:
        parts.append(str(origin.heading))
    if chunk.tokens is not None:
        parts.append(t("cb_tokens", n=chunk.tokens))
    return (
        f'<div class="rs-chunk" data-chunk-id="{escape(chunk.id, quote=True)}" '
        f'data-chunk-index="{origin.chunk_index}" style="padding:2px 4px">'
        f'<div style="font-weight:600">{escape(" · ".join(parts))}</div>'
        f'<div class="rs-text" style="white-space:pre-wrap;max-height:20em;overflow:auto;background:#fafafa;'
        f'padding:6px;border-radius:4px;margin-top:4px">{escape(chunk.text)}</div></div>'
    )


def _reset_chunk_page() -> None:
    st.session_state["cb_offset"] = 0


def _move(key: str, step: int) -> None:
    st.session_state[key] = max(0, int(st.session_state.get(key, 0)) + step)


def pager(key: str, offset: int, size: int, has_more: bool) -> None:
    """Previous / next buttons moving ``st.session_state[key]`` (an offset) by one page."""
    left, right, _ = st.columns([1, 1, 6])
    left.button(t("cb_previous"), key=f"{key}_prev", disabled=offset == 0, on_click=_move, args=(key, -size))
    right.button(t("cb_next"), key=f"{key}_next", disabled=not has_more, on_click=_move, args=(key, size))


def documents(browser: ChunkBrowser) -> str | None:
    """The page of documents as a choice; returns the chosen document's source."""
    ss = st.session_state
    offset = int(ss.get("cb_doc_offset", 0))
    entries = browser.documents(limit=DOCUMENTS_PER_PAGE + 1, offset=offset)
    has_more = len(entries) > DOCUMENTS_PER_PAGE
    entries = entries[:DOCUMENTS_PER_PAGE]
    if not entries:
        st.info(t("no_documents"))
        return None
    counts: dict[str, int] = {}
    for entry in entries:  # several documents (records of a CSV) can share one file
        counts[entry.source] = counts.get(entry.source, 0) + entry.chunks
    sources = list(counts)
    if ss.get("cb_source") not in sources:
        ss["cb_source"] = sources[0]
    st.caption(t("cb_documents", first=offset + 1, last=offset + len(entries)))
    st.selectbox(t("cb_document"), sources, key="cb_source", on_change=_reset_chunk_page,
                 format_func=lambda source: t("cb_doc_option", source=source, chunks=counts[source]))
    if offset or has_more:
        pager("cb_doc_offset", offset, DOCUMENTS_PER_PAGE, has_more)
    return str(ss["cb_source"])


def chunk_list(page: ChunkPage, kb: str) -> None:
    """The page's chunks, each with its id (st.code has a copy button) and the explain button."""
    if not page.chunks:
        st.info(t("cb_no_chunks"))
        return
    st.caption(t("cb_shown", first=page.offset + 1, last=page.offset + len(page.chunks)))
    for chunk in page.chunks:
        with st.container(border=True):
            st.html(chunk_html(chunk))
            left, right = st.columns([3, 1])
            left.code(chunk.id, language=None)
            if right.button(t("cb_explain"), key=f"cb_explain_{chunk.id}"):
                st.session_state[EXPLAIN_REQUEST] = {"kb": kb, "query": st.session_state.get("cb_query", ""),
                                                     "chunk_id": chunk.id}
                st.switch_page(PAGES / "retrieval_check.py")
    pager("cb_offset", page.offset, CHUNKS_PER_PAGE, page.has_more)


def page() -> None:
    settings = app_settings()
    opts = options(settings)
    st.title(t("cb_title"))
    st.caption(t("cb_caption"))
    if not opts.kb:
        st.info(t("no_kb"))
        return
    ss = st.session_state
    if ss.get("cb_kb") != opts.kb:  # another knowledge base: start from its first pages
        ss["cb_kb"], ss["cb_offset"], ss["cb_doc_offset"] = opts.kb, 0, 0
        ss.pop("cb_source", None)
    encoder = resources.encoder(settings)
    browser = ChunkBrowser(resources.store(settings).open(opts.kb), count_tokens=encoder.count_tokens)
    st.text_input(t("cb_query"), key="cb_query")
    contains = st.text_input(t("cb_contains"), key="cb_contains", on_change=_reset_chunk_page).strip()
    source = None if contains else documents(browser)
    if not contains and source is None:
        return
    offset = int(ss.get("cb_offset", 0))
    result = browser.chunks(source=source, contains=contains or None, limit=CHUNKS_PER_PAGE, offset=offset)
    chunk_list(result, opts.kb)


page()
