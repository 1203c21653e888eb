"""The FastAPI application of `rag serve`: routes, error handlers, the body-size limit, OpenAPI docs at /docs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from api import chat, dify, health, routes
from api.errors import describe_validation, on_http_error, on_rag_error, on_validation_error
from api.limits import ContentLengthLimit
from api.services import Services
from rag.config import Settings
from rag.errors import RagError

log = logging.getLogger("ragscope.api")

DESCRIPTION = (
    "ragscope's knowledge bases over HTTP: OpenAI-compatible chat (`model`: `ragscope/<kb>`) with the sources and "
    "all their scores, retrieval with every score, Dify's External Knowledge API, similarity and health. With "
    "api.keys set, send `Authorization: Bearer KEY` (every route but /healthz)."
)


def create_app(settings: Settings, *, preload: bool = False, services: Services | None = None) -> FastAPI:
    """The API over ``settings``; ``preload`` loads the encoder and connects to Milvus at start-up (`rag serve`)
    instead of on the first request. A failure there is logged and shown by /healthz, not fatal."""
    shared = services or Services(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if preload:
            try:
                await run_in_threadpool(shared.encoder)
                await run_in_threadpool(shared.milvus_reachable)
            except RagError as exc:
                log.error("%s", exc)
        yield
        shared.close()

    app = FastAPI(title="ragscope API", description=DESCRIPTION, version="0.1.0", lifespan=lifespan)
    app.state.services = shared
    app.add_middleware(ContentLengthLimit, max_kb=settings.api.max_request_kb)
    app.add_exception_handler(RagError, on_rag_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, on_rag_error)
    for module in (health, routes, chat, dify):
        app.include_router(module.router)
    return app


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """A body that does not fit the schema: 400, in Dify's error shape on Dify's route."""
    if request.url.path == dify.PATH and isinstance(exc, RequestValidationError):
        return dify.dify_error(400, 400, describe_validation(exc))
    return await on_validation_error(request, exc)
