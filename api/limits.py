"""Request size limit: a body over ``api.max_request_kb`` gets a JSON 413: at once when its Content-Length says so,
else (a chunked body) as soon as the bytes received pass the limit."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body


def too_large_message(max_kb: int) -> str:
    return f"request body too large: at most {max_kb} KB (api.max_request_kb); send a shorter query or fewer messages."


class ContentLengthLimit:
    """ASGI middleware: 413 with a JSON error when the body exceeds ``max_kb`` KB.

    The streamed case raises Starlette's HTTPException from ``receive``: FastAPI passes that on unchanged to the
    app's handler (api.errors.on_http_error), where any other exception would become a 400.
    """

    def __init__(self, app: ASGIApp, max_kb: int) -> None:
        self.app = app
        self.max_kb = max_kb

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_kb * 1024:
                body = json.dumps(error_body(too_large_message(self.max_kb), "request_too_large", 413)).encode()
                await send({"type": "http.response.start", "status": 413, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        limit, received = self.max_kb * 1024, 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413)
            return message

        await self.app(scope, counted if scope["type"] == "http" else receive, send)
