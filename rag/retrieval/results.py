"""What a search returns: the ranked chunks as LangChain Documents, plus how they were scored and how long it took."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from langchain_core.documents import Document


@dataclass
class Timings:
    """Milliseconds spent per step: query encoding, Milvus searches, exact rescoring, reranking (either kind)."""

    encode_ms: float = 0.0
    milvus_ms: float = 0.0
    rescoring_ms: float = 0.0
    rerank_ms: float = 0.0
    total_ms: float = 0.0


@dataclass
class RetrievalResult:
    """The outcome of one search.

    ``documents``: the chunks, best first, at most ``top_k``; each ``Document.metadata`` holds id, doc_id,
    source, chunk_index, title, page, heading, rank, kb, scores, matched_terms and the stored metadata.
    ``formula``: how the final score was computed, in words a user can check by hand.
    ``candidates``: chunks whose scores were computed exactly (the union of the searches the mode uses).
    ``dense_hits`` / ``sparse_hits``: chunks returned by each Milvus search (before the union).
    ``below_min_score``: candidates dropped because their final score was under ``min_score``.
    ``colbert``: ColBERT reranked; ``rerank``: what reranked (none, colbert or cross-encoder).
    ``kbs``: the knowledge bases searched (``[kb]`` for one; several are merged by
    :class:`rag.retrieval.multi_kb.MultiKBRetriever`, ``kb`` then joins their names with ``+``).
    """

    query: str
    kb: str
    mode: str
    fusion: str
    top_k: int
    min_score: float
    colbert: bool
    weights: dict[str, float]
    filters: dict[str, Any]
    formula: str
    documents: list[Document] = field(default_factory=list)
    candidates: int = 0
    dense_hits: int = 0
    sparse_hits: int = 0
    below_min_score: int = 0
    cached_query: bool = False
    timings: Timings = field(default_factory=Timings)
    rerank: str = "none"
    kbs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.kbs:
            self.kbs = [self.kb]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: the settings used, the timings and each chunk's text and metadata."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("documents", "timings")}
        data["timings"] = asdict(self.timings)
        data["documents"] = [{"text": d.page_content, **d.metadata} for d in self.documents]
        return data
