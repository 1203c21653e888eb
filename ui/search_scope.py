"""Where the chat and the Retrieval check page search: the active knowledge base, any others built with the same
model, and the search filters (folder, source, file types, pages, record fields), in one popover per page."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from rag.config import RetrievalSettings, Settings
from rag.errors import InvalidInputError
from rag.retrieval import HybridRetriever, MultiKBRetriever
from rag.retrieval.filters import SearchFilters, parse_pages, text_alternatives
from rag.retrieval.multi_kb import KB_SEPARATOR
from ui import resources
from ui.i18n import t
from ui.safe_markdown import escape_markdown

# The file types the readers record (an image's is its suffix); others (new readers) can be typed into the box.
FILE_TYPES = ("pdf", "docx", "md", "txt", "html", "csv", "json", "jsonl", "xlsx", "xls", "pptx",
              "png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp")


@dataclass(frozen=True)
class Scope:
    """The knowledge bases to search (the active one first) and the filters (None: no filter)."""

    kbs: tuple[str, ...]
    filters: SearchFilters | None = None

    @property
    def label(self) -> str:
        """The knowledge bases as one name, ``a+b`` (as RetrievalResult.kb)."""
        return KB_SEPARATOR.join(self.kbs)


def same_model_kbs(settings: Settings, active: str) -> list[str]:
    """The other knowledge bases built with the active one's model (their scores compare)."""
    store = resources.store(settings)
    model = store.open(active).model
    others = []
    for name in store.knowledge_bases():
        if name != active:
            recorded = store.open(name).model
            if (recorded.fingerprint, recorded.dim) == (model.fingerprint, model.dim):
                others.append(name)
    return others


def render(settings: Settings, active: str, prefix: str) -> Scope | None:
    """The scope popover (widget keys ``{prefix}_scope_*``); None, with an error shown, when a filter is invalid."""
    ss = st.session_state
    keys = {name: f"{prefix}_scope_{name}" for name in ("kbs", "folder", "source", "types", "pages", "meta")}
    others = same_model_kbs(settings, active)
    ss[keys["kbs"]] = [name for name in ss.get(keys["kbs"], []) if name in others]
    chosen = (active, *ss[keys["kbs"]])
    count = sum(bool(ss.get(keys[name])) for name in ("folder", "source", "types", "pages", "meta"))
    with st.popover(t("scope", kbs=escape_markdown(KB_SEPARATOR.join(chosen)), n=count)):
        st.multiselect(t("scope_also"), others, key=keys["kbs"], help=t("scope_also_help"))
        left, right = st.columns(2)
        left.text_input(t("scope_folder"), key=keys["folder"])
        right.text_input(t("scope_source"), key=keys["source"])
        left.multiselect(t("scope_types"), FILE_TYPES, key=keys["types"], accept_new_options=True)
        right.text_input(t("scope_pages"), key=keys["pages"])
        st.text_area(t("scope_meta"), key=keys["meta"], height=68)
    try:
        filters = _filters(*(ss.get(keys[name]) for name in ("folder", "source", "types", "pages", "meta")))
    except InvalidInputError as exc:
        st.error(escape_markdown(str(exc)))
        return None
    return Scope((active, *ss[keys["kbs"]]), filters)


def _filters(folder: str | None, source: str | None, types: list[str] | None, pages: str | None,
             meta: str | None) -> SearchFilters | None:
    fields: dict[str, tuple] = {}
    for line in (meta or "").splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(t("scope_bad_meta", line=line.strip()))
        fields[key.strip()] = fields.get(key.strip(), ()) + text_alternatives(value.strip())
    first, last = parse_pages(pages) if pages and pages.strip() else (None, None)
    folder = (folder or "").strip()
    filters = SearchFilters(source=(source or "").strip() or None, source_prefix=SearchFilters.folder(folder) if folder
                            else None, file_types=tuple(types or ()), page_from=first, page_to=last, fields=fields)
    return filters if filters.expression() else None


def retriever(settings: Settings, scope: Scope, retrieval: RetrievalSettings) -> HybridRetriever | MultiKBRetriever:
    """The retriever of the scope: the active knowledge base's, or one over all chosen, with the filters."""
    if len(scope.kbs) == 1:
        single = resources.retriever(settings, scope.kbs[0], retrieval)
        return single.model_copy(update={"filters": scope.filters}) if scope.filters else single
    return MultiKBRetriever.from_store(resources.encoder(settings), resources.store(settings), list(scope.kbs),
                                       retrieval, filters=scope.filters)
