"""GET /healthz: Milvus, the encoder and Ollama, each with a message that says what to start (no key needed).

200 while searches can be served (Milvus reachable, the encoder loaded or loadable); 503 otherwise. Ollama being
down only degrades the answer routes, so it is reported without failing the check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from rag.chain import check_ollama
from rag.store.guard import unavailable_message

router = APIRouter()


@router.get("/healthz", summary="Status of Milvus, the encoder and Ollama (no API key needed)")
def healthz(request: Request) -> JSONResponse:
    services = request.app.state.services
    settings = services.settings
    milvus_ok = services.milvus_reachable()
    milvus: dict[str, Any] = {"ok": milvus_ok, "uri": settings.milvus.uri}
    if not milvus_ok:
        milvus["message"] = services.store_error or unavailable_message(settings.milvus.uri)
    encoder: dict[str, Any] = {"ok": services.encoder_error is None, "loaded": services.encoder_loaded,
                               "model": Path(settings.embedding.model).name or settings.embedding.model}
    if services.encoder_error:
        encoder["message"] = services.encoder_error
    ollama = check_ollama(settings.llm.base_url, settings.llm.model)
    ready = milvus_ok and encoder["ok"]
    body = {
        "status": ("ok" if ollama.ok else "degraded") if ready else "unavailable",
        "milvus": milvus,
        "encoder": encoder,
        "ollama": {"ok": ollama.ok, "base_url": ollama.base_url, "model": ollama.model, "reachable": ollama.reachable,
                   "model_present": ollama.model_present, "message": ollama.message},
    }
    return JSONResponse(body, status_code=200 if ready else 503)
