"""Similarity analyser: two texts, their dense / sparse / ColBERT / hybrid scores, and a gauge coloured by level."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from rag.config import LevelSettings
from rag.errors import InvalidInputError
from rag.similarity import SimilarityResult, compare_texts
from ui import resources
from ui.i18n import t
from ui.markup import LEVEL_BACKGROUNDS, LEVEL_COLOURS
from ui.safe_markdown import escape_markdown
from ui.state import app_settings

RESULT_KEY = "sim_result"
EXAMPLES = [
    ("我喜欢看书", "阅读使我快乐"),
    ("How are you?", "What's up?"),
    ("我喜欢看书", "I enjoy reading books"),
    ("The cat sits on the mat.", "股票市场今天下跌了"),
]


def _use_example(a: str, b: str) -> None:
    st.session_state["sim_a"], st.session_state["sim_b"] = a, b


def gauge(result: SimilarityResult, levels: LevelSettings) -> go.Figure:
    """A Plotly indicator of the dense similarity in percent, its bar in the level's colour."""
    low = min(0.0, result.dense_percent)
    steps = [
        {"range": [low, levels.related * 100], "color": LEVEL_BACKGROUNDS["unrelated"]},
        {"range": [levels.related * 100, levels.very_similar * 100], "color": LEVEL_BACKGROUNDS["related"]},
        {"range": [levels.very_similar * 100, 100], "color": LEVEL_BACKGROUNDS["very_similar"]},
    ]
    figure = go.Figure(go.Indicator(
        mode="gauge+number", value=round(result.dense_percent, 1), number={"suffix": "%"},
        title={"text": f"{t('dense_similarity')}: {result.label}"},
        gauge={"axis": {"range": [low, 100]}, "bar": {"color": LEVEL_COLOURS[result.level]}, "steps": steps},
    ))
    figure.update_layout(height=300, margin={"t": 60, "b": 10, "l": 30, "r": 30})
    return figure


def show(result: SimilarityResult, levels: LevelSettings) -> None:
    st.plotly_chart(gauge(result, levels), key="sim_gauge")
    st.markdown(f"<span style='color:{LEVEL_COLOURS[result.level]};font-weight:600'>{result.label}</span>",
                unsafe_allow_html=True)  # the label is ours (rag.similarity), not user text
    cols = st.columns(4)
    cols[0].metric("dense", f"{result.dense_percent:.1f}%")
    cols[1].metric("sparse", f"{result.sparse:.4f}")
    cols[2].metric("colbert", f"{result.colbert:.4f}")
    cols[3].metric("hybrid", f"{result.hybrid:.4f}")
    st.caption(result.formula)
    if result.matched_terms:
        terms = ", ".join(str(m["term"]) for m in result.matched_terms[:20])
        st.caption(t("matched_terms") + ": " + escape_markdown(terms))


def page() -> None:
    settings = app_settings()
    st.title(t("sim_title"))
    st.caption(t("examples"))
    for column, (index, (a, b)) in zip(st.columns(len(EXAMPLES)), enumerate(EXAMPLES), strict=True):
        column.button(f"{a} ↔ {b}", key=f"sim_example_{index}", on_click=_use_example, args=(a, b))
    left, right = st.columns(2)
    text_a = left.text_area(t("text_a"), key="sim_a", height=110)
    text_b = right.text_area(t("text_b"), key="sim_b", height=110)
    ss = st.session_state
    if st.button(t("compare"), key="sim_compare", type="primary"):
        ss.pop(RESULT_KEY, None)
        empty = [name for name, text in (("A", text_a), ("B", text_b)) if not text.strip()]
        if empty:
            st.error(t("empty_text", name=" / ".join(empty)))
        else:
            try:
                ss[RESULT_KEY] = compare_texts(resources.encoder(settings), text_a, text_b,
                                               weights=settings.retrieval.weights, levels=settings.levels)
            except InvalidInputError as exc:
                st.error(escape_markdown(str(exc)))
    result: SimilarityResult | None = ss.get(RESULT_KEY)
    if result is not None and (result.text_a, result.text_b) == (text_a, text_b):
        show(result, settings.levels)


page()
