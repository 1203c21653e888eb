"""What every request shares, made once per process: the encoder, the Milvus store and a retriever per knowledge
base. Loading is lazy (the first request that needs it) and thread-safe, so that requests running in the thread
pool never load a model twice; a Milvus server that stopped answering is reconnected on the next request."""

from __future__ import annotations

import contextlib
import threading

from rag.chain import AnswerChain
from rag.config import Settings
from rag.encoder import Encoder, load_encoder
from rag.errors import RagError
from rag.retrieval import HybridRetriever, MultiKBRetriever
from rag.store import MilvusStore


class Services:
    """The shared encoder, store and retrievers of one API process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._encoder: Encoder | None = None
        self._store: MilvusStore | None = None
        self._retrievers: dict[str, HybridRetriever] = {}
        self._chains: dict[str, AnswerChain] = {}
        self._lock = threading.RLock()
        self.encoder_error: str | None = None  # why the encoder could not be loaded (for /healthz)
        self.store_error: str | None = None  # why Milvus could not be reached at the last try

    @property
    def encoder_loaded(self) -> bool:
        return self._encoder is not None

    def encoder(self) -> Encoder:
        """The embedding model, loaded on first use."""
        with self._lock:
            if self._encoder is None:
                try:
                    self._encoder = load_encoder(self.settings.embedding, data_dir=self.settings.app.data_dir)
                except RagError as exc:
                    self.encoder_error = str(exc)
                    raise
                self.encoder_error = None
            return self._encoder

    def store(self) -> MilvusStore:
        """The Milvus store; a server connection that stopped answering is made again."""
        with self._lock:
            if self._store is not None and not self._store.embedded and not self._store.ping():
                self._drop_store()
            if self._store is None:
                self._store = MilvusStore(self.settings.milvus)
            return self._store

    def retriever(self, kb: str) -> HybridRetriever:
        """The retriever of knowledge base ``kb`` with the configured retrieval settings (per-call overrides go to
        its ``search``), made once and reused while ``kb`` exists; KnowledgeBaseNotFoundError when it does not."""
        store = self.store()
        with self._lock:
            retriever = self._retrievers.get(kb)
            if retriever is not None and not store.exists(kb):  # dropped since (e.g. rag-ingest drop)
                del self._retrievers[kb]
                retriever = None
            if retriever is None:
                retriever = HybridRetriever.from_store(self.encoder(), store, kb, self.settings.retrieval)
                self._retrievers[kb] = retriever
            return retriever

    def retrievers(self, kbs: list[str]) -> HybridRetriever | MultiKBRetriever:
        """One knowledge base's retriever, or for several names one search over all of them (built with the same
        model: ModelMismatchError otherwise), their chunks ranked together as if they were one knowledge base."""
        if len(kbs) == 1:
            return self.retriever(kbs[0])
        return MultiKBRetriever(retrievers=[self.retriever(kb) for kb in kbs], settings=self.settings.retrieval)

    def chain(self, kb: str) -> AnswerChain:
        """The answering chain (the web app's) over knowledge base ``kb``, with the configured LLM."""
        retriever = self.retriever(kb)
        with self._lock:
            chain = self._chains.get(kb)
            if chain is None or chain.retriever is not retriever:
                chain = AnswerChain(retriever, self.settings.llm)
                self._chains[kb] = chain
            return chain

    def knowledge_bases(self) -> list[str]:
        return self.store().knowledge_bases()

    def milvus_reachable(self) -> bool:
        """Whether Milvus answers now (without raising)."""
        try:
            ok = self.store().ping()
        except RagError as exc:
            self.store_error = str(exc)
            return False
        self.store_error = None
        return ok

    def _drop_store(self) -> None:
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._store.close()
        self._store = None
        self._retrievers.clear()
        self._chains.clear()

    def close(self) -> None:
        with self._lock:
            self._drop_store()
