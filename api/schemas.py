"""Request bodies of the API's own routes (/v1/retrieval, /v1/similarity); shown with examples at /docs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rag.config import Fusion, Mode, Rerank


class RetrievalRequest(BaseModel):
    """A search with every score; fields left out take the server's retrieval settings."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "How many days per week may employees work remotely?", "kb": "default", "top_k": 5,
         "mode": "hybrid", "filters": {"source_prefix": "policies/"}},
    ]})

    query: str = Field(description="What to look for, in any language.")
    kb: str | list[str] | None = Field(None, description="Knowledge base name (or a list); default: kb.name.")
    top_k: int | None = Field(None, ge=1, description="Chunks to return (at most api.max_top_k).")
    mode: Mode | None = None
    fusion: Fusion | None = None
    weights: dict[str, float] | None = Field(None, description="dense, sparse, colbert, rerank weights.")
    filters: dict[str, Any] | None = Field(None, description=(
        "As `rag search`: source, source_prefix, file_types, page_from, page_to, metadata, fields."))
    min_score: float | None = Field(None, description="Keep chunks with final >= min_score.")
    rerank: Rerank | None = None


class SimilarityRequest(BaseModel):
    """Two texts to compare."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"a": "我喜欢看书", "b": "阅读使我快乐"}]})

    a: str = Field(description="First text.")
    b: str = Field(description="Second text.")
