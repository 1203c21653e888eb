"""The sidebar: active knowledge base, retrieval options, LLM model, and the status of Milvus, encoder, Ollama."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from rag.config import RERANKS, RetrievalSettings, Settings
from rag.encoder.runtime import device_for
from rag.errors import RagError
from rag.rerank import loaded_reranker
from ui import resources
from ui.i18n import LANG_KEY, LANGUAGES, t
from ui.safe_markdown import code_span, escape_markdown
from ui.state import MODES, options, retrieval_settings


def language_switch() -> None:
    st.sidebar.radio(t("language"), list(LANGUAGES), format_func=LANGUAGES.__getitem__, key=LANG_KEY,
                     horizontal=True)


def _kb_select(settings: Settings, names: list[str]) -> None:
    ss = st.session_state
    if not names:
        ss.pop("opt_kb", None)
        st.sidebar.info(t("no_kb"))
        return
    request = ss.get("explain_request")  # another page asks the Retrieval check page to explain a chunk of this KB
    if isinstance(request, dict) and request.get("kb") in names:
        ss["opt_kb"] = request["kb"]
    if ss.get("opt_kb") not in names:
        ss["opt_kb"] = settings.kb.name if settings.kb.name in names else names[0]
    st.sidebar.selectbox(t("active_kb"), names, key="opt_kb")


def _model_select(settings: Settings) -> None:
    ss = st.session_state
    status = resources.ollama_status(settings.llm.base_url, str(ss.get("opt_model") or settings.llm.model))
    models = list(dict.fromkeys([settings.llm.model, *status.models, str(ss.get("opt_model") or "")]))
    st.sidebar.selectbox(t("llm_model"), [m for m in models if m], key="opt_model")


def render(settings: Settings) -> None:
    """Draw the sidebar; the choices land in session state (read them with ``ui.state.options``)."""
    sb = st.sidebar
    errors: dict[str, str] = {}
    encoder = milvus = None
    try:
        milvus = resources.store(settings)
        _kb_select(settings, milvus.knowledge_bases())
    except RagError as exc:
        errors["milvus"] = str(exc)
    try:
        encoder = resources.encoder(settings)
    except RagError as exc:
        errors["encoder"] = str(exc)
    sb.slider(t("top_k"), 1, max(50, settings.retrieval.top_k), key="opt_top_k")
    sb.selectbox(t("mode"), MODES, key="opt_mode")
    sb.number_input(t("min_score"), min_value=-1.0, max_value=100.0, step=0.05, format="%.2f", key="opt_min_score")
    _reranker_select(bool(encoder is not None and encoder.supports_colbert))
    _model_select(settings)
    _status(settings, encoder, milvus, errors)


def _reranker_select(colbert_ok: bool) -> None:
    """What reorders the best candidates (none, ColBERT, the cross-encoder) and how many of them."""
    ss = st.session_state
    choices = [name for name in RERANKS if colbert_ok or name != "colbert"]
    if ss.get("opt_rerank") not in choices:
        ss["opt_rerank"] = "none"
    st.sidebar.selectbox(t("reranker"), choices, key="opt_rerank",
                         help=t("reranker_help") + ("" if colbert_ok else " " + t("colbert_unavailable")))
    st.sidebar.number_input(t("rerank_candidates"), min_value=1, max_value=1000, step=5, key="opt_rerank_candidates",
                            disabled=ss["opt_rerank"] == "none", help=t("rerank_candidates_help"))


def _line(ok: bool, name: str, detail: str) -> str:
    return f"{'🟢' if ok else '🔴'} **{name}** · {detail}"


def _reranker_status(retrieval: RetrievalSettings) -> None:
    """The cross-encoder's line: model, device, precision (int8 / fp16 / fp32), loaded (green) or not yet (white:
    it loads on the first search that reranks)."""
    config = retrieval.reranker
    reranker = loaded_reranker(config)
    model = Path(config.model).name or config.model
    if reranker is None:
        try:
            device = device_for(config, "retrieval.reranker")
        except RagError:  # e.g. int8 on cuda: the search that loads it says what to change
            device = config.device
        precision = reranker_precision(config.quantize, config.fp16, device)
        line = (f"⚪ **{t('status_reranker')}** · {code_span(model)} · {device} · {precision} · {t('not_loaded')}, "
                f"{t('loads_on_first_search')}")
    else:
        precision = reranker_precision(config.quantize, config.fp16, reranker.device)
        detail = f"{code_span(model)} · {reranker.device} · {precision} · {t('loaded')}"
        line = _line(True, t("status_reranker"), detail)
    st.sidebar.markdown(line)


def reranker_precision(quantize: str, fp16: bool, device: str) -> str:
    """int8 (dynamic quantisation, CPU), fp16 (``fp16`` on a GPU) or fp32, as the cross-encoder runs."""
    if quantize == "int8":
        return "int8"
    return "fp16" if fp16 and device.startswith("cuda") else "fp32"


def _status(settings: Settings, encoder: object, milvus: object, errors: dict[str, str]) -> None:
    sb = st.sidebar
    sb.divider()
    sb.caption(t("status"))
    reachable = milvus is not None and resources.milvus_reachable(milvus)  # type: ignore[arg-type]
    sb.markdown(_line(reachable, t("status_milvus"), f"{code_span(settings.milvus.uri)} · "
                                                     f"{t('reachable') if reachable else t('unreachable')}"))
    if "milvus" in errors:
        sb.error(escape_markdown(errors["milvus"]))
    model = Path(settings.embedding.model).name or settings.embedding.model
    device = getattr(encoder, "device", settings.embedding.device)
    sb.markdown(_line(encoder is not None, t("status_encoder"),
                      f"{code_span(model)} · {device} · {t('loaded') if encoder is not None else t('not_loaded')}"))
    if "encoder" in errors:
        sb.error(escape_markdown(errors["encoder"]))
    retrieval = retrieval_settings(settings, options(settings))
    if retrieval.cross_encoder_rerank:
        _reranker_status(retrieval)
    status = resources.ollama_status(settings.llm.base_url, str(st.session_state.get("opt_model")))
    detail = t("reachable") if status.reachable else t("unreachable")
    if status.reachable:
        detail += f" · {t('model_present') if status.model_present else t('model_missing')}"
    sb.markdown(_line(status.ok, t("status_ollama"), f"{code_span(settings.llm.base_url)} · {detail}"))
    if not status.ok:
        sb.caption(escape_markdown(status.message))
