"""The API's own routes: /v1/retrieval (the JSON of `rag search --json`), /v1/similarity, /v1/kbs.

Handlers are plain ``def``: FastAPI runs them in its thread pool, so encoding and Milvus searches never block
the event loop.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from api.auth import require_key
from api.retrieval import retrieve
from api.schemas import RetrievalRequest, SimilarityRequest
from api.services import Services
from rag.similarity import compare_texts

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])


def services_of(request: Request) -> Services:
    return request.app.state.services


@router.post("/retrieval", summary="Search a knowledge base: every chunk with all its scores, the formula, timings")
def retrieval(body: RetrievalRequest, request: Request) -> dict[str, Any]:
    """The same JSON as `rag search --json`: settings used, timings, and each chunk's text and metadata (scores:
    dense, sparse, colbert, rerank, hybrid, rrf, ranks and final)."""
    result = retrieve(services_of(request), body.query, kb=body.kb, top_k=body.top_k, mode=body.mode,
                      fusion=body.fusion, weights=body.weights, filters=body.filters, min_score=body.min_score,
                      rerank=body.rerank)
    return result.to_dict()


@router.post("/similarity", summary="How similar two texts are: dense (with its level), sparse, colbert, hybrid")
def similarity(body: SimilarityRequest, request: Request) -> dict[str, Any]:
    """The same JSON as `rag similarity A B --json`."""
    services = services_of(request)
    settings = services.settings
    return compare_texts(services.encoder(), body.a, body.b, settings.retrieval.weights, settings.levels).to_dict()


@router.get("/kbs", summary="The knowledge bases with their chunk counts and embedding model")
def knowledge_bases(request: Request) -> dict[str, Any]:
    services = services_of(request)
    store = services.store()
    items = []
    for name in store.knowledge_bases():
        kb = store.open(name)
        items.append({"name": name, "chunks": kb.count(), "model": kb.model.name, "dim": kb.model.dim})
    return {"default": services.settings.kb.name, "knowledge_bases": items}
