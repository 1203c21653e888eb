"""Score cards in rank order, with the fusion formula, relevance buttons and the retrieval downloads."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import streamlit as st

from rag.config import Settings
from rag.evaluation.judgments import Label, append_judgment
from rag.retrieval import Provenance, Scores
from ui.exports import to_csv, to_json
from ui.i18n import t
from ui.markup import card_html, formula_lines

JUDGED_KEY = "judged"


def _judge(data_dir: str, kb: str, query: str, doc: Mapping[str, Any], label: Label, key: str) -> None:
    source = Provenance.from_metadata(doc).source
    append_judgment(data_dir, kb=str(doc.get("kb") or kb), query=query, chunk_id=str(doc["id"]), source=source,
                    label=label)
    st.session_state.setdefault(JUDGED_KEY, {})[key] = label


def render_card(doc: Mapping[str, Any], *, query: str, kb: str, key: str, settings: Settings,
                cited: bool = False, show_kb: bool = False) -> None:
    """One chunk: the HTML card (text escaped; with its knowledge base if ``show_kb``), the formula expander and the
    relevant / not relevant buttons (a mark is recorded under the chunk's own knowledge base)."""
    labels = {name: t(name) for name in ("chunk", "page", "slide", "cited", "matched_terms", "ocr")}
    with st.container(border=True):
        st.html(card_html(doc, settings.levels, labels, settings.retrieval.rrf_k, cited=cited, show_kb=show_kb))
        with st.expander(t("formula")):
            st.code("\n".join(formula_lines(Scores.from_metadata(doc), settings.retrieval.rrf_k)), language=None)
        judged = st.session_state.get(JUDGED_KEY, {}).get(key)
        left, right, note = st.columns([1, 1, 3])
        for column, label, text in ((left, "relevant", t("relevant")), (right, "not_relevant", t("not_relevant"))):
            column.button(f"{'👍' if label == 'relevant' else '👎'} {text}", key=f"{key}-{label}",
                          on_click=_judge, args=(settings.app.data_dir, kb, query, doc, label, key),
                          type="primary" if judged == label else "secondary")
        if judged:
            note.caption(t("judged", label=t(judged)))


def render_cards(docs: Sequence[Mapping[str, Any]], *, query: str, kb: str, key: str, settings: Settings,
                 cited: Collection[int] = ()) -> None:
    """All cards in rank order; ``key`` makes widget keys unique (one per answer or search). Each card names its
    knowledge base when several were searched (``kb`` joins them with ``+``) or the chunks come from several."""
    if not docs:
        st.info(t("no_sources"))
        return
    show_kb = "+" in kb or len({doc.get("kb") for doc in docs}) > 1
    for doc in docs:
        rank = int(doc.get("rank", 0))
        render_card(doc, query=query, kb=kb, key=f"{key}-{rank}-{doc['id']}", settings=settings,
                    cited=rank in cited, show_kb=show_kb)


def render_downloads(docs: Sequence[Mapping[str, Any]], *, query: str, key: str, rrf_k: int, **extra: Any) -> None:
    """CSV and JSON downloads of the retrieval (query, chunks, all scores; the CSV also each final's formula)."""
    if not docs:
        return
    left, right, _ = st.columns([1, 1, 3])
    left.download_button(t("download_csv"), to_csv(query, docs, rrf_k), file_name="retrieval.csv", mime="text/csv",
                         key=f"{key}-csv", on_click="ignore")
    right.download_button(t("download_json"), to_json(query, docs, **extra), file_name="retrieval.json",
                          mime="application/json", key=f"{key}-json", on_click="ignore")
