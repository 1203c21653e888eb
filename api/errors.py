"""Errors as JSON with the right status: ``{"error": {"message", "type", "code"}}`` (the shape OpenAI clients read).

A RagError from the library keeps its message (it says what to do) and gets the status of its kind; anything
unexpected is a 500 with a one-line message, never a traceback.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.chain import LLMError, LLMModelMissingError, LLMOfflineError, LLMTimeoutError
from rag.errors import (
    ConfigError,
    InvalidInputError,
    KnowledgeBaseNotFoundError,
    ModelMismatchError,
    ModelNotAvailableError,
    RagError,
    StoreLockedError,
    StoreUnavailableError,
)

# Most specific first: the first class the error is an instance of gives status and type.
_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (InvalidInputError, 400, "invalid_request_error"),
    (KnowledgeBaseNotFoundError, 404, "not_found_error"),
    (ModelMismatchError, 409, "model_mismatch_error"),
    (StoreUnavailableError, 503, "service_unavailable"),
    (StoreLockedError, 503, "service_unavailable"),
    (ModelNotAvailableError, 503, "service_unavailable"),
    (LLMOfflineError, 503, "service_unavailable"),
    (LLMModelMissingError, 503, "service_unavailable"),
    (LLMTimeoutError, 504, "timeout_error"),
    (LLMError, 502, "llm_error"),
    (ConfigError, 500, "config_error"),
)


class ApiError(RagError):
    """An error of the API itself (auth, limits, a request it cannot serve) with its HTTP status."""

    def __init__(self, status: int, message: str, error_type: str = "invalid_request_error",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.headers = headers


def status_of(exc: Exception) -> tuple[int, str]:
    """The HTTP status and error type of ``exc``."""
    if isinstance(exc, ApiError):
        return exc.status, exc.error_type
    for cls, status, error_type in _STATUS:
        if isinstance(exc, cls):
            return status, error_type
    if isinstance(exc, RagError):
        return 400, "invalid_request_error"
    return 500, "internal_error"


def error_body(message: str, error_type: str, status: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "code": status}}


def error_response(exc: Exception) -> JSONResponse:
    """The JSON response for ``exc``."""
    status, error_type = status_of(exc)
    message = str(exc) if isinstance(exc, RagError) else f"internal error ({type(exc).__name__}); see the server log."
    headers = exc.headers if isinstance(exc, ApiError) else None
    return JSONResponse(error_body(message, error_type, status), status_code=status, headers=headers)


def describe_validation(exc: RequestValidationError) -> str:
    """A request body that does not fit the schema, in one line: which field, what is wrong."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err.get("loc", ()) if part != "body") or "body"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(problems) + "."


async def on_rag_error(request: Request, exc: Exception) -> JSONResponse:
    return error_response(exc)


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(error_body(describe_validation(exc), "invalid_request_error", 400), status_code=400)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail) if exc.detail else "error"
    if exc.status_code == 404:
        message = f"no such route: {request.method} {request.url.path}; see /docs for the API."
    elif exc.status_code == 413:
        from api.limits import too_large_message

        message = too_large_message(request.app.state.services.settings.api.max_request_kb)
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}; see /docs for the API."
    return JSONResponse(error_body(message, "invalid_request_error", exc.status_code), status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))
