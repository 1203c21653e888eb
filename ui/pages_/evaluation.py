"""Evaluation: every retrieval mode over the user's own marks (or a BEIR folder), with charts, significance,
misses to explain, and the marks to edit, export and import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from rag.config import Settings, with_overrides
from rag.errors import InvalidInputError
from rag.evaluation import Evaluation, Judgment, evaluate_questions, judgments_path, load_beir_folder
from rag.evaluation.beir import qrels_files
from rag.evaluation.marks import current_marks, export_marks, import_marks, marks_qrels, remove_marks
from rag.evaluation.modes import ALL_MODES, MODES, RERANK_MODES
from rag.evaluation.report import metric_label
from rag.evaluation.significance import MAX_P, MIN_QUESTIONS, TEST_NAME
from rag.workbench.chunks import ChunkBrowser
from ui import rerank_view, resources, tune_panel
from ui.evaluation_charts import metrics_chart, metrics_table, rank_chart
from ui.i18n import t
from ui.safe_markdown import code_span, escape_markdown
from ui.state import app_settings, options, retrieval_settings

PAGES = Path(__file__).resolve().parent
RESULT_KEY = "ev_result"
VERSION_KEY = "ev_marks_version"  # a new editor (no ticks left over) after marks are removed or imported
NOTICE_KEY = "ev_notice"
MODES_KEY = "ev_modes"


def recall_ks(top_k: int) -> list[int]:
    """Recall@1, @top-k (the sidebar's) and @10."""
    return sorted({1, top_k, 10})


def chosen_modes() -> list[str]:
    """The modes to evaluate: every mode of `rag eval` by default; the cross-encoder's modes when chosen."""
    st.session_state.setdefault(MODES_KEY, list(MODES))
    return list(st.multiselect(t("ev_modes"), ALL_MODES, key=MODES_KEY, help=t("ev_modes_help")))


def run(settings: Settings, kb: str, source: dict[str, Any], queries: dict[str, str],
        qrels: dict[str, dict[str, int]], modes: list[str]) -> None:
    """The ``modes`` over ``queries``; ``source`` says what the judged ids are (key, strip_prefix) and where from."""
    if not modes:
        st.warning(t("ev_no_modes"))
        return
    opts = options(settings)
    retrieval = retrieval_settings(settings, opts)
    if any(mode in RERANK_MODES for mode in modes):
        rerank_view.load(with_overrides(retrieval, rerank="cross-encoder"))
    bar = st.progress(0.0, text=t("ev_progress", mode="", done=0, total=0))

    def progress(done: int, total: int, mode: str) -> None:
        bar.progress(done / total if total else 1.0, text=t("ev_progress", mode=mode, done=done, total=total))

    retriever = resources.retriever(settings, kb, retrieval)
    evaluation = evaluate_questions(retriever, queries, qrels, recall_ks(opts.top_k), key=source["key"],
                                    strip_prefix=source["prefix"], modes=modes, progress=progress)
    bar.empty()
    st.session_state[RESULT_KEY] = {"kb": kb, "source": source, "qrels": qrels, "evaluation": evaluation}


def significance(evaluation: Evaluation) -> None:
    st.subheader(t("ev_significance"))
    st.caption(t("ev_significance_caption", test=TEST_NAME, max_p=MAX_P, min=MIN_QUESTIONS))
    if not evaluation.comparisons:
        st.info(t("ev_one_mode"))
        return
    st.dataframe(pd.DataFrame([{
        "metric": metric_label(c.metric), "mode A": c.first, "mode B": c.second, "A": c.first_score,
        "B": c.second_score, "p": c.p, "verdict": c.verdict,
    } for c in evaluation.comparisons]), hide_index=True, key="ev_significance", column_config={
        name: st.column_config.NumberColumn(name, format="%.4f") for name in ("A", "B", "p")})


def explain(kb: str, query: str, chunk_id: str) -> None:
    """Open "explain a miss" on the Retrieval check page (the cross-page contract)."""
    st.session_state["explain_request"] = {"kb": kb, "query": query, "chunk_id": chunk_id}
    st.switch_page(PAGES / "retrieval_check.py")


def relevant_chunk(settings: Settings, kb: str, source: dict[str, Any], relevant: str) -> str | None:
    """The chunk to explain for a relevant id: the id itself (marks), or the document's first chunk (BEIR)."""
    if source["key"] == "id":
        return relevant
    return ChunkBrowser(resources.store(settings).open(kb)).first_chunk(source["prefix"] + relevant)


def misses(settings: Settings, evaluation: Evaluation, kb: str, source: dict[str, Any]) -> None:
    st.subheader(t("ev_misses"))
    ran = [r for r in evaluation.results if not r.unavailable]
    found = False
    for index, question in enumerate(ran[0].questions if ran else []):
        missed_by = [r.mode for r in ran if r.questions[index].missed]
        if not missed_by:
            continue
        found = True
        left, right = st.columns([5, 1])
        left.markdown(f"**Q{index + 1}** {escape_markdown(question.query)}  \n"
                      + escape_markdown(t("ev_missed_by", modes=", ".join(missed_by))))
        if right.button(t("ev_explain"), key=f"ev_explain_{index}"):
            chunk_id = relevant_chunk(settings, kb, source, question.relevant[0])
            if chunk_id is None:
                left.warning(t("ev_not_in_kb", doc=escape_markdown(source["prefix"] + question.relevant[0])))
            else:
                explain(kb, question.query, chunk_id)
    if not found:
        st.success(t("ev_no_misses"))


def results(settings: Settings, kb: str, source: dict[str, Any], qrels: dict[str, dict[str, int]]) -> None:
    held = st.session_state.get(RESULT_KEY)
    if not held or held["kb"] != kb or held["source"] != source:
        return
    evaluation: Evaluation = held["evaluation"]
    st.subheader(t("ev_results", questions=evaluation.questions, depth=evaluation.depth))
    if held["qrels"] != qrels:
        st.warning(t("ev_stale"))
    names = [metric_label(name) for name in evaluation.metrics]
    st.dataframe(metrics_table(evaluation), hide_index=True, key="ev_table", column_config={
        **{name: st.column_config.NumberColumn(name, format="%.4f") for name in names},
        "queries/s": st.column_config.NumberColumn("queries/s", format="%.1f"),
    })
    left, right = st.columns([2, 3])
    left.plotly_chart(metrics_chart(evaluation), key="ev_metrics_chart")
    right.plotly_chart(rank_chart(evaluation), key="ev_rank_chart")
    right.caption(t("ev_rank_caption", depth=evaluation.depth))
    significance(evaluation)
    misses(settings, evaluation, kb, source)


def _done(notice: str) -> None:
    st.session_state[VERSION_KEY] = st.session_state.get(VERSION_KEY, 0) + 1
    st.session_state[NOTICE_KEY] = notice


def marks_section(path: Path, kb: str, marks: list[Judgment]) -> None:
    st.subheader(t("ev_marks"))
    ss = st.session_state
    if notice := ss.pop(NOTICE_KEY, None):
        st.success(notice)
    if marks:
        st.caption(t("ev_remove_help"))
        table = pd.DataFrame([{"remove": False, "query": m.query, "chunk_id": m.chunk_id, "source": m.source,
                               "label": m.label, "time": m.time} for m in marks])
        edited = st.data_editor(table, hide_index=True, key=f"ev_marks_{ss.get(VERSION_KEY, 0)}",
                                disabled=[c for c in table.columns if c != "remove"],
                                column_config={"remove": st.column_config.CheckboxColumn("remove")})
        left, right, _ = st.columns([1, 1, 2])
        if left.button(t("ev_remove"), key="ev_remove"):
            ticked = [(m.query, m.chunk_id) for m, tick in zip(marks, edited["remove"], strict=True) if tick]
            if not ticked:
                st.warning(t("ev_nothing_ticked"))
            else:
                remove_marks(path, kb, ticked)
                _done(t("ev_removed", n=len(ticked)))
                st.rerun()
        right.download_button(t("ev_export"), export_marks(path, kb), file_name=f"judgments-{kb}.jsonl",
                              mime="application/jsonl", key="ev_export", on_click="ignore")
    upload = st.file_uploader(t("ev_import_file"), type=["jsonl", "json", "txt"],
                              key=f"ev_upload_{ss.get(VERSION_KEY, 0)}")
    if st.button(t("ev_import"), key="ev_import"):
        if upload is None:
            st.warning(t("ev_import_none"))
            return
        try:
            count = import_marks(path, upload.getvalue().decode("utf-8", errors="replace"), kb=kb)
        except InvalidInputError as exc:
            st.error(escape_markdown(f"{upload.name}: {exc}"))
            return
        _done(t("ev_imported", n=count))
        st.rerun()


def marks_source(settings: Settings, kb: str, path: Path, marks: list[Judgment]) -> None:
    """The marks of this knowledge base as the questions: a Run button, and the results of the last run."""
    qrels = marks_qrels(marks)
    judged = {query: chunks for query, chunks in qrels.items() if any(chunks.values())}
    st.caption(t("ev_source", questions=len(judged), marks=len(marks), path=code_span(str(path))))
    source = {"kind": "marks", "key": "id", "prefix": ""}
    if not judged:
        st.info(t("ev_no_marks"))
    else:
        modes = chosen_modes()
        if st.button(t("ev_run"), key="ev_run", type="primary"):
            run(settings, kb, source, {query: query for query in qrels}, qrels, modes)
    results(settings, kb, source, qrels)
    if judged:
        opts = options(settings)
        tune_panel.section(settings, kb, retrieval_settings(settings, opts), qrels, recall_ks(opts.top_k))


def beir_source(settings: Settings, kb: str) -> None:
    """A BEIR folder's queries and qrels, matched on document id against this knowledge base (as `rag eval`)."""
    st.caption(t("ev_beir_help"))
    folder_text = st.text_input(t("ev_beir_folder"), key="ev_beir_folder").strip()
    prefix = st.text_input(t("ev_beir_prefix"), value="corpus.jsonl#", key="ev_beir_prefix")
    if not folder_text:
        return
    folder = Path(folder_text).expanduser()
    files = qrels_files(folder) if folder.is_dir() else []
    qrels_file = st.selectbox(t("ev_beir_qrels"), files, format_func=lambda p: p.name, key="ev_beir_qrels_file")
    try:
        data = load_beir_folder(folder, qrels_file)
    except InvalidInputError as exc:
        st.error(escape_markdown(str(exc)))
        return
    source = {"kind": "beir", "folder": str(folder), "qrels": str(qrels_file), "key": "doc_id", "prefix": prefix}
    st.caption(t("ev_beir_loaded", questions=len(data.queries), path=code_span(str(qrels_file or folder))))
    modes = chosen_modes()
    if st.button(t("ev_run"), key="ev_run", type="primary"):
        run(settings, kb, source, data.queries, data.qrels, modes)
    results(settings, kb, source, data.qrels)


def page() -> None:
    settings = app_settings()
    opts = options(settings)
    st.title(t("ev_title"))
    st.caption(t("ev_caption"))
    if not opts.kb:
        st.info(t("no_kb"))
        return
    path = judgments_path(settings.app.data_dir)
    marks = current_marks(path, opts.kb)
    kind = st.radio(t("ev_questions"), ("marks", "beir"), format_func=lambda k: t(f"ev_from_{k}"),
                    key="ev_kind", horizontal=True)
    if kind == "beir":
        beir_source(settings, opts.kb)
    else:
        marks_source(settings, opts.kb, path, marks)
    marks_section(path, opts.kb, marks)


page()
