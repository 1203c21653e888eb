"""Process-wide resources: the encoder and the Milvus store are created once and shared by all sessions."""

from __future__ import annotations

import contextlib

import streamlit as st

from rag.chain import OllamaStatus, check_ollama
from rag.config import EmbeddingSettings, MilvusSettings, RetrievalSettings, Settings
from rag.encoder import Encoder, load_encoder
from rag.retrieval import HybridRetriever
from rag.store import MilvusStore
from ui.i18n import t
from ui.safe_markdown import escape_markdown

_READY: set[tuple[str, ...]] = set()  # resources already created, so later runs skip the spinner


@st.cache_resource(show_spinner=False, max_entries=4)
def _encoder(embedding_json: str, data_dir: str) -> Encoder:
    return load_encoder(EmbeddingSettings.model_validate_json(embedding_json), data_dir=data_dir)


@st.cache_resource(show_spinner=False, max_entries=4)
def _store(milvus_json: str) -> MilvusStore:
    return MilvusStore(MilvusSettings.model_validate_json(milvus_json))


def encoder(settings: Settings) -> Encoder:
    """The shared encoder; the first call in this process shows a spinner naming the model."""
    key = (settings.embedding.model_dump_json(), settings.app.data_dir)
    if ("encoder", *key) in _READY:
        return _encoder(*key)
    with st.spinner(t("loading_encoder", model=escape_markdown(settings.embedding.model),
                      device=settings.embedding.device)):
        value = _encoder(*key)
    _READY.add(("encoder", *key))
    return value


def store(settings: Settings) -> MilvusStore:
    """The shared Milvus store (embedded milvus-lite or a server connection).

    A server connection is checked first: one that stopped answering (the server was down) is closed and made
    again, so the first question after the server is back works instead of failing on a dead client.
    """
    key = settings.milvus.model_dump_json()
    if ("store", key) in _READY:
        value = _store(key)
        if value.embedded or milvus_reachable(value):
            return value
        _forget_store(key, value)
    with st.spinner(t("loading_store", uri=escape_markdown(settings.milvus.uri))):
        value = _store(key)
    _READY.add(("store", key))
    return value


def _forget_store(key: str, dead: MilvusStore) -> None:
    """Drop a store whose server stopped answering, so that the next call makes a new connection."""
    with contextlib.suppress(Exception):
        dead.close()
    _store.clear(key)
    _READY.discard(("store", key))


def encoder_loaded(settings: Settings) -> bool:
    return ("encoder", settings.embedding.model_dump_json(), settings.app.data_dir) in _READY


@st.cache_data(ttl=10, show_spinner=False)
def ollama_status(base_url: str, model: str) -> OllamaStatus:
    """Ollama's reachability and pulled models, re-checked at most every 10 seconds."""
    return check_ollama(base_url, model)


def milvus_reachable(milvus: MilvusStore) -> bool:
    try:
        milvus.client.list_collections()
    except Exception:
        return False
    return True


def retriever(settings: Settings, kb: str, retrieval: RetrievalSettings | None = None) -> HybridRetriever:
    """A retriever on knowledge base ``kb`` with the given (or the configured) retrieval settings."""
    return HybridRetriever.from_store(encoder(settings), store(settings), kb, retrieval or settings.retrieval)
