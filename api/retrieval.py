"""One function that answers every retrieval of the API (/v1/retrieval, Dify's /retrieval): the knowledge base(s)
named in the request (several: one search over all of them, rag.retrieval.multi_kb), the limits checked, per-call
overrides passed to the retriever's ``search``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.services import Services
from rag.config import Fusion, Mode, Rerank
from rag.errors import InvalidInputError
from rag.retrieval import RetrievalResult, SearchFilters


def kb_names(services: Services, kb: str | list[str] | None) -> list[str]:
    """The knowledge bases a request names: one name, a list, or none (kb.name)."""
    if kb is None:
        return [services.settings.kb.name]
    names = [kb] if isinstance(kb, str) else list(kb)
    names = [name.strip() for name in names]
    if not names or not all(names):
        raise InvalidInputError("kb must be a knowledge-base name or a non-empty list of names.")
    return names


def retrieve(
    services: Services,
    query: str,
    *,
    kb: str | list[str] | None = None,
    top_k: int | None = None,
    mode: Mode | None = None,
    fusion: Fusion | None = None,
    weights: Mapping[str, float] | None = None,
    filters: Mapping[str, Any] | None = None,
    min_score: float | None = None,
    rerank: Rerank | None = None,
) -> RetrievalResult:
    """Search the knowledge base(s) ``kb`` and return the result with every score (RetrievalResult.to_dict is the
    JSON of `rag search --json`). Runs in the caller's thread: call it off the event loop."""
    limit = services.settings.api.max_top_k
    if top_k is not None and top_k > limit:
        raise InvalidInputError(f"top_k {top_k} is over this server's limit of {limit} (api.max_top_k).")
    names = kb_names(services, kb)
    retriever = services.retrievers(names)
    return retriever.search(query, top_k=top_k, mode=mode, fusion=fusion, weights=weights,
                            filters=SearchFilters.coerce(filters), min_score=min_score, rerank=rerank)
