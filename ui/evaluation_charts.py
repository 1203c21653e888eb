"""The Evaluation page's tables and Plotly figures, built from a rag.evaluation.Evaluation (no widgets here).

Plotly renders a subset of HTML in labels and hover texts (links included), so every question is HTML-escaped.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from rag.evaluation import Evaluation
from rag.evaluation.report import metric_label
from ui.i18n import t

LABEL_CHARS = 60


def question_label(number: int, query: str) -> str:
    """A chart label: numbered (so two long questions never merge) and HTML-escaped (Plotly renders tags)."""
    text = query if len(query) <= LABEL_CHARS else query[: LABEL_CHARS - 1] + "…"
    return html.escape(f"Q{number} · {text}")


def metrics_table(evaluation: Evaluation) -> pd.DataFrame:
    """One row per mode: its metrics (None where the encoder cannot serve it) and queries/s or why not."""
    rows = []
    for result in evaluation.results:
        row: dict[str, Any] = {"mode": result.mode}
        for name in evaluation.metrics:
            row[metric_label(name)] = None if result.unavailable else result.metrics[name]
        row["queries/s"] = None if result.unavailable else result.queries_per_second
        row["note"] = result.unavailable
        rows.append(row)
    return pd.DataFrame(rows)


def metrics_chart(evaluation: Evaluation) -> go.Figure:
    figure = go.Figure()
    labels = [metric_label(name) for name in evaluation.metrics]
    for result in evaluation.results:
        if not result.unavailable:
            figure.add_bar(name=result.mode, x=labels, y=[result.metrics[n] for n in evaluation.metrics])
    figure.update_layout(barmode="group", yaxis={"range": [0, 1]}, title=t("ev_metrics_chart"), height=380)
    return figure


def rank_chart(evaluation: Evaluation) -> go.Figure:
    """Questions x modes: the rank of the first relevant chunk, 'missed' past the depth."""
    ran = [r for r in evaluation.results if not r.unavailable]
    questions = ran[0].questions if ran else []
    labels = [question_label(n, q.query) for n, q in enumerate(questions, start=1)]
    missed = t("ev_missed")
    z, text = [], []
    for index in range(len(questions)):
        ranks = [r.questions[index].rank for r in ran]
        z.append([rank if rank is not None else evaluation.depth + 1 for rank in ranks])
        text.append([str(rank) if rank is not None else missed for rank in ranks])
    figure = go.Figure(go.Heatmap(
        z=z, x=[r.mode for r in ran], y=labels, text=text, texttemplate="%{text}", colorscale="RdYlGn",
        reversescale=True, zmin=1, zmax=evaluation.depth + 1, showscale=False,
        hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>",
    ))
    figure.update_layout(title=t("ev_rank_chart"), yaxis={"autorange": "reversed"}, xaxis={"side": "top"},
                         height=max(300, 140 + 36 * len(questions)), margin={"t": 110})
    return figure
