"""API keys: ``Authorization: Bearer KEY`` against ``api.keys``, and the rule that a server reachable from other
machines must have keys.

With keys configured, every route but ``/healthz`` (and the OpenAPI docs) needs one of them; without keys the
server only listens on a loopback address (:func:`check_bind`), where only this machine reaches it.
"""

from __future__ import annotations

import hmac
from typing import Literal

from fastapi import Request

from api.errors import ApiError
from rag.config import ApiSettings, is_loopback
from rag.errors import ConfigError

KeyProblem = Literal["missing", "malformed", "wrong"]


def check_bind(api: ApiSettings, host: str) -> None:
    """ConfigError unless ``host`` is a loopback address or API keys are configured."""
    if not is_loopback(host) and not api.keys:
        raise ConfigError(
            f"refusing to listen on {host} without an API key: anyone who can reach it could read your knowledge "
            "bases and use your model. Set api.keys in your config file or RAG_API__KEYS=KEY (several: "
            "KEY1,KEY2), or listen on 127.0.0.1 (the default)."
        )


def key_problem(api: ApiSettings, authorization: str | None) -> KeyProblem | None:
    """What is wrong with the request's Authorization header (None: accepted, or no keys are configured)."""
    if not api.keys:
        return None
    if not authorization:
        return "missing"
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "malformed"
    token = token.strip().encode()
    if any(hmac.compare_digest(token, key.encode()) for key in api.keys):
        return None
    return "wrong"


MESSAGES: dict[KeyProblem, str] = {
    "missing": "this server needs an API key: send the header `Authorization: Bearer KEY` (one of api.keys).",
    "malformed": "invalid Authorization header format: expected `Bearer KEY`.",
    "wrong": "the API key is not valid: use one of the server's api.keys.",
}


def require_key(request: Request) -> None:
    """FastAPI dependency: 401 without a usable key, 403 with a wrong one."""
    api: ApiSettings = request.app.state.services.settings.api
    problem = key_problem(api, request.headers.get("authorization"))
    if problem is None:
        return
    status = 403 if problem == "wrong" else 401
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    raise ApiError(status, MESSAGES[problem], "authentication_error", headers)
