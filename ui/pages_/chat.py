"""Chat page: ask, read the streamed answer, check the retrieved chunks as score cards."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import streamlit as st

from rag.chain import AnswerChain, cited_numbers
from rag.config import Settings
from rag.errors import RagError
from ui import rerank_view, resources, search_scope
from ui.cards import render_cards, render_downloads
from ui.exports import doc_dict
from ui.i18n import t
from ui.safe_markdown import escape_markdown, markdown_html
from ui.state import Options, app_settings, llm_settings, options, retrieval_settings

TURNS_KEY = "chat_turns"
REDRAW_S = 0.1


def render_extras(index: int, turn: dict[str, Any], settings: Settings) -> None:
    """What follows an answer: the LLM banner, then the sources as cards and the downloads."""
    if turn.get("error"):
        st.warning(t("partial_banner" if turn.get("partial") else "llm_banner",
                     message=escape_markdown(turn["error"])))
    docs = turn["documents"]
    if turn.get("standalone") and turn["standalone"] != turn["question"]:
        st.caption(t("rewritten", q=escape_markdown(turn["standalone"])))
    st.markdown(f"**{t('sources', n=len(docs))}**")
    if turn.get("rerank_timing"):
        st.caption(escape_markdown(turn["rerank_timing"]))
    render_cards(docs, query=turn["standalone"] or turn["question"], kb=turn["kb"], key=f"turn{index}",
                 settings=settings, cited=set(cited_numbers(turn["answer"])))
    render_downloads(docs, query=turn["question"], key=f"turn{index}", rrf_k=settings.retrieval.rrf_k, kb=turn["kb"],
                     answer=turn["answer"])


def show_answer(text: str, where: Any = st) -> None:
    """The LLM's Markdown answer with images and links shown as text (ui.safe_markdown): it loads nothing."""
    where.markdown(markdown_html(text), unsafe_allow_html=True)


def stream_answer(pieces: Iterable[str]) -> None:
    """Show the answer as it streams: the sanitised text so far, redrawn in one placeholder, then once more when
    it is complete. Each redraw parses the whole text so far, so redraws come at most every REDRAW_S seconds and
    never take more than a fifth of the time (see benchmarks/answer_rendering.py)."""
    placeholder, text, next_draw = st.empty(), "", 0.0
    for piece in pieces:
        text += piece
        if time.monotonic() >= next_draw:
            started = time.monotonic()
            show_answer(text, placeholder)
            took = time.monotonic() - started
            next_draw = started + max(REDRAW_S, 5 * took)
    if text:
        show_answer(text, placeholder)


def render_turn(index: int, turn: dict[str, Any], settings: Settings) -> None:
    with st.chat_message("user"):
        st.markdown(escape_markdown(turn["question"]))
    with st.chat_message("assistant"):
        if turn.get("fatal"):
            st.error(escape_markdown(turn["fatal"]))
            return
        if turn["answer"]:
            show_answer(turn["answer"])
        render_extras(index, turn, settings)


def ask(question: str, settings: Settings, opts: Options, turns: list[dict[str, Any]],
        scope: search_scope.Scope | None = None) -> dict[str, Any]:
    """Retrieve (from the scope's knowledge bases, with its filters), stream the answer into the page, and return the
    turn to keep in the history."""
    kb = scope.label if scope is not None else opts.kb or ""
    turn: dict[str, Any] = {"question": question, "kb": kb, "answer": "", "documents": [],
                            "standalone": question, "error": None, "partial": False, "fatal": None}
    with st.chat_message("assistant"):
        if not opts.kb:
            turn["fatal"] = t("no_kb")
            st.error(escape_markdown(turn["fatal"]))
            return turn
        history = [(x["question"], x["answer"]) for x in turns if x["answer"] and not x.get("error")]
        try:
            retrieval = retrieval_settings(settings, opts)
            rerank_view.load(retrieval)
            with st.spinner(rerank_view.searching(retrieval)):
                retriever = (search_scope.retriever(settings, scope, retrieval) if scope is not None
                             else resources.retriever(settings, opts.kb, retrieval))
                stream = AnswerChain(retriever, llm_settings(settings, opts)).stream(question, history)
        except RagError as exc:
            turn["fatal"] = str(exc)
            st.error(escape_markdown(turn["fatal"]))
            return turn
        turn["documents"] = [doc_dict(d) for d in stream.documents]
        turn["standalone"] = stream.standalone_question
        turn["rerank_timing"] = rerank_view.timing(retriever.last_result, retrieval.rerank_candidates)
        if not stream.error:  # a failed follow-up rewrite has nothing to stream
            stream_answer(stream)
        turn.update(answer=stream.text, error=stream.error, partial=stream.partial)
        render_extras(len(turns), turn, settings)
    return turn


def page() -> None:
    settings = app_settings()
    opts = options(settings)
    turns: list[dict[str, Any]] = st.session_state.setdefault(TURNS_KEY, [])
    head, clear = st.columns([4, 1])
    head.title(t("chat_title"))
    if turns and clear.button(t("clear_chat"), key="chat_clear"):
        turns.clear()
        st.rerun()
    status = resources.ollama_status(settings.llm.base_url, opts.model)
    if not status.ok:
        st.warning(escape_markdown(status.message))
    scope, scope_ok = None, True
    if opts.kb:
        try:
            scope = search_scope.render(settings, opts.kb, "chat")
            scope_ok = scope is not None  # None: a filter is invalid (the error is shown)
        except RagError:
            pass  # Milvus is down: a question gets its message, as without the scope
    for index, turn in enumerate(turns):
        render_turn(index, turn, settings)
    question = st.chat_input(t("chat_placeholder"), key="chat_input")
    if question and question.strip() and scope_ok:
        with st.chat_message("user"):
            st.markdown(escape_markdown(question))
        turns.append(ask(question.strip(), settings, opts, turns, scope))


page()
