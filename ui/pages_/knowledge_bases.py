"""Knowledge bases: list them, pick the active one, upload + ingest files, delete documents or a whole base."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from ingest import SUPPORTED_SUFFIXES, IngestPipeline, IngestReport
from rag.config import KBSettings, Settings
from rag.errors import RagError
from rag.store import MilvusStore, StoredDocument
from ui import resources
from ui.i18n import t
from ui.safe_markdown import escape_markdown
from ui.state import app_settings, options
from ui.uploads import StreamlitProgress, save_uploads, show_summary, upload_dir

REPORT_KEY = "kbm_report"
NOTICE_KEY = "kbm_notice"


def _activate(name: str) -> None:
    st.session_state["opt_kb"] = name


def overview(store: MilvusStore, names: list[str]) -> dict[str, dict[str, StoredDocument]]:
    """The table of knowledge bases with document and chunk counts; returns each base's documents."""
    bases = {name: store.open(name) for name in names}
    documents = {name: base.documents() for name, base in bases.items()}
    st.dataframe(pd.DataFrame([
        {"name": name, t("kb_documents"): len({d.source for d in docs.values()}),
         t("kb_chunks"): sum(d.chunks for d in docs.values()), t("kb_model"): bases[name].model.name}
        for name, docs in documents.items()
    ]), hide_index=True, key="kbm_table")
    return documents


def ingest(settings: Settings, store: MilvusStore, kb: str, files: list) -> None:
    try:
        KBSettings(name=kb)
    except ValidationError:
        st.error(t("bad_kb_name", name=escape_markdown(kb)))
        return
    saved = save_uploads(files, upload_dir(settings.app.data_dir, kb), settings.app.max_upload_mb)
    bar = st.progress(0.0, text=t("ingesting", files=len(files)))
    if saved.paths:
        with IngestPipeline(
            settings, resources.encoder(settings), store, data_dir=settings.app.data_dir
        ) as pipeline:
            report = pipeline.run(saved.paths, kb=kb, progress=StreamlitProgress(bar))
    else:
        report = IngestReport(kb=kb)
    report.failed[:0] = saved.rejected
    report.files[:0] = saved.rejected
    bar.progress(1.0)
    st.session_state[REPORT_KEY] = report
    if saved.paths and kb in store.knowledge_bases():
        st.session_state.setdefault("opt_kb", kb)
    st.rerun()  # redraw the table and the sidebar's list with the new counts


def upload_section(settings: Settings, store: MilvusStore, active: str | None) -> None:
    st.subheader(t("upload"))
    st.session_state.setdefault("kbm_target", active or settings.kb.name)
    st.text_input(t("upload_target"), key="kbm_target")
    kinds = sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES)
    files = st.file_uploader(t("upload"), type=kinds, accept_multiple_files=True, key="kbm_files",
                             max_upload_size=max(1, math.ceil(settings.app.max_upload_mb)),
                             help=t("upload_help", mb=settings.app.max_upload_mb, types=" ".join(kinds)))
    if st.button(t("ingest"), key="kbm_ingest", type="primary"):
        if files:
            ingest(settings, store, st.session_state["kbm_target"].strip(), list(files))
        else:
            st.warning(t("ingest_none"))
    report = st.session_state.get(REPORT_KEY)
    if report is not None:
        show_summary(report)


def manage_section(store: MilvusStore, name: str, docs: dict[str, StoredDocument]) -> None:
    st.subheader(t("documents"))
    by_source: dict[str, list[StoredDocument]] = {}
    for doc in docs.values():
        by_source.setdefault(doc.source, []).append(doc)
    if not by_source:
        st.info(t("no_documents"))
    else:
        labels = {s: f"{s} ({len(docs)} {t('kb_documents')}, {sum(d.chunks for d in docs)} {t('kb_chunks')})"
                  for s, docs in by_source.items()}
        source = st.selectbox(t("delete_doc"), sorted(by_source), key="kbm_doc", format_func=labels.__getitem__)
        sure = st.checkbox(t("confirm_delete_doc", doc=escape_markdown(source)), key="kbm_doc_sure")
        st.button(t("delete_doc"), key="kbm_doc_delete", disabled=not sure, on_click=_delete_source,
                  args=(store, name, source, by_source[source]))
    st.subheader(t("drop_kb"))
    typed = st.text_input(t("confirm_drop", kb=name), key="kbm_drop_name")
    st.button(t("drop_kb"), key="kbm_drop", type="primary", disabled=typed.strip() != name, on_click=_drop,
              args=(store, name))


def _delete_source(store: MilvusStore, kb: str, source: str, docs: list[StoredDocument]) -> None:
    """Button callback (runs before the next run): delete all documents of one file, after confirmation."""
    try:
        store.open(kb).delete_documents([d.doc_id for d in docs])
        st.session_state[NOTICE_KEY] = ("success", t("deleted_doc", doc=escape_markdown(source), kb=kb,
                                                     chunks=sum(d.chunks for d in docs)))
    except RagError as exc:
        st.session_state[NOTICE_KEY] = ("error", escape_markdown(str(exc)))
    st.session_state["kbm_doc_sure"] = False


def _drop(store: MilvusStore, kb: str) -> None:
    """Button callback: delete a whole knowledge base, after its name was typed."""
    try:
        store.drop(kb)
        st.session_state[NOTICE_KEY] = ("success", t("dropped", kb=kb))
    except RagError as exc:
        st.session_state[NOTICE_KEY] = ("error", escape_markdown(str(exc)))
    st.session_state["kbm_drop_name"] = ""


def page() -> None:
    settings = app_settings()
    opts = options(settings)
    store = resources.store(settings)
    st.title(t("kb_title"))
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        (st.success if notice[0] == "success" else st.error)(notice[1])
    names = store.knowledge_bases()
    documents = overview(store, names) if names else {}
    if not names:
        st.info(t("kb_none"))
    else:
        st.caption(t("kb_is_active", kb=opts.kb))
        name = st.selectbox(t("kb_manage"), names, key="kbm_name",
                            index=names.index(opts.kb) if opts.kb in names else 0)
        st.button(t("kb_make_active"), key="kbm_activate", on_click=_activate, args=(name,),
                  disabled=name == opts.kb)
    upload_section(settings, store, opts.kb)
    if names:
        manage_section(store, name, documents[name])


page()
