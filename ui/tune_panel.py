"""The Evaluation page's "Learn fusion weights" part: ``rag.workbench.tune`` over the knowledge base's marks, the
held-out figures per fold, the chosen fusion, and buttons to apply it to the session or download it as a config."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import streamlit as st

from rag.config import CONFIG_ENV, RetrievalSettings, Settings
from rag.errors import RagError
from rag.evaluation.report import metric_label
from rag.workbench.tune import DEFAULT_FOLDS, OBJECTIVE, FusionChoice, TuneReport, apply_fusion, tune
from rag.workbench.tuned_config import tuned_config_text
from ui import resources
from ui.i18n import t
from ui.safe_markdown import escape_markdown
from ui.state import SESSION_FUSION, apply_session_fusion, reset_session_fusion

RESULT_KEY = "ev_tune_result"


def metrics(report: TuneReport) -> list[str]:
    """The metrics shown: nDCG@10 (what tuning maximises), then Recall@k for each cut-off."""
    return [OBJECTIVE, *(f"recall@{k}" for k in report.ks)]


def folds_table(report: TuneReport) -> pd.DataFrame:
    """One row per fold (its questions held out, the fusion learned without them, before -> after on them) and a
    last row "all": every question measured by the fold that held it out."""
    names = metrics(report)

    def figures(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {f"{metric_label(n)} {when}": values[n] for n in names
                for when, values in (("before", before), ("after", after))}

    rows: list[dict[str, Any]] = [
        {"fold": str(f.fold), "questions": len(f.questions), "learned without them": f.learned.describe(),
         **figures(f.before, f.after)} for f in report.folds]
    rows.append({"fold": "all", "questions": report.questions, "learned without them": "",
                 **figures(report.held_out_before, report.held_out_after)})
    return pd.DataFrame(rows)


def run(settings: Settings, kb: str, retrieval: RetrievalSettings, qrels: dict[str, dict[str, int]],
        folds: int, ks: list[int]) -> None:
    """Tune on ``qrels`` with a progress bar; the report is kept in the session with what it was learned on."""
    bar = st.progress(0.0, text=t("tu_progress", stage="", done=0, total=0))

    def progress(stage: str, done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=t("tu_progress", stage=stage, done=done, total=total))

    retriever = resources.retriever(settings, kb, retrieval)
    try:
        report = tune(retriever, qrels, folds=folds, ks=ks, progress=progress)
    except RagError as exc:
        st.session_state.pop(RESULT_KEY, None)
        st.error(escape_markdown(str(exc)))
        return
    finally:
        bar.empty()
    st.session_state[RESULT_KEY] = {"kb": kb, "qrels": qrels, "report": report}


def config_download(report: TuneReport) -> None:
    """The chosen fusion as a --config YAML: the app's own config file ($RAG_CONFIG) with it, else just it."""
    base = os.environ.get(CONFIG_ENV) or None
    try:
        text = tuned_config_text(report.retrieval_changes(), base)
    except RagError as exc:
        st.error(escape_markdown(str(exc)))
        return
    st.download_button(t("tu_download"), text.encode("utf-8"), file_name=f"tuned-{report.kb}.yaml",
                       mime="application/yaml", key="ev_tune_download", on_click="ignore")
    st.caption(t("tu_download_help"))


def show(settings: Settings, report: TuneReport, session: RetrievalSettings) -> None:
    """The held-out table, the current / learned / chosen fusion with the verdict and notes, Apply and download."""
    st.caption(t("tu_table_caption", questions=report.questions, folds=len(report.folds)))
    names = [f"{metric_label(n)} {when}" for n in metrics(report) for when in ("before", "after")]
    st.dataframe(folds_table(report), hide_index=True, key="ev_tune_table",
                 column_config={name: st.column_config.NumberColumn(name, format="%.4f") for name in names})
    st.markdown("  \n".join([
        t("tu_current", fusion=escape_markdown(report.start.describe())),
        t("tu_learned", questions=report.questions, tried=report.tried,
          fusion=escape_markdown(report.learned.describe())),
        t("tu_chosen", fusion=escape_markdown(report.chosen.describe())),
    ]))
    before, after = report.held_out_before[OBJECTIVE], report.held_out_after[OBJECTIVE]
    if report.changed:
        st.success(t("tu_changed", before=before, after=after))
    else:
        st.info(t("tu_kept", before=before, after=after))
    if report.skipped:
        st.caption(t("tu_skipped", n=report.skipped))
    for note in report.notes:
        st.warning(escape_markdown(note))
    applied = apply_fusion(session, report.chosen)
    in_use = FusionChoice.of(session).same(report.chosen)
    left, right = st.columns(2)
    with left:
        st.button(t("tu_apply"), key="ev_tune_apply", disabled=in_use, on_click=apply_session_fusion,
                  args=(applied,), type="primary")
        if in_use:
            st.caption(t("tu_in_use"))
        if SESSION_FUSION in st.session_state:
            st.button(t("tu_reset"), key="ev_tune_reset", on_click=reset_session_fusion, args=(settings,))
    with right:
        config_download(report)


def section(settings: Settings, kb: str, session: RetrievalSettings, qrels: dict[str, dict[str, int]],
            ks: list[int]) -> None:
    """The "Learn fusion weights" part for the marks ``qrels`` of knowledge base ``kb``."""
    st.subheader(t("tu_title"))
    st.caption(t("tu_caption"))
    folds = st.number_input(t("tu_folds"), min_value=2, max_value=20, value=DEFAULT_FOLDS, step=1, key="ev_tune_folds")
    if st.button(t("tu_run"), key="ev_tune"):
        run(settings, kb, session, qrels, int(folds), ks)
    held = st.session_state.get(RESULT_KEY)
    if not held or held["kb"] != kb:
        return
    if held["qrels"] != qrels:
        st.warning(t("ev_stale"))
    show(settings, held["report"], session)
