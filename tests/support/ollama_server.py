"""A small HTTP server that speaks enough of Ollama's API for the real `ollama` / `langchain-ollama` clients.

Endpoints, with the shapes a real Ollama (0.12) sends:
- ``POST /api/chat``: NDJSON stream (``application/x-ndjson``, chunked) of ``{"model", "created_at",
  "message": {"role": "assistant", "content": piece}, "done": false}`` objects and a final ``done: true``
  object with ``done_reason`` and the duration / token counters; or one JSON object when ``"stream": false``.
  An unknown model gives 404 ``{"error": "model \\"x\\" not found, try pulling it first"}``.
- ``GET /api/tags``, ``POST /api/show``, ``GET /api/version``, ``GET /`` ("Ollama is running").

Behaviour is set per test through ``server.behaviour`` (a :class:`ChatBehaviour`): the reply (text, or a
function of the request body), the known models, a failure mid-stream (an ``{"error": ...}`` line, as Ollama
sends when a runner dies, or a dropped connection), delays, an HTTP error status. Every request is recorded.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

OLLAMA_VERSION = "0.12.6"
DEFAULT_MODEL = "qwen2.5:3b"
# The error line Ollama streams when the model runner dies in the middle of an answer.
RUNNER_ERROR = "an error was encountered while running the model: unexpected EOF"
_PIECE = re.compile(r"\s*(?:[\u3000-\u9fff\uff00-\uffef]|[^\s\u3000-\u9fff\uff00-\uffef]+)|\s+$")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def split_pieces(text: str) -> list[str]:
    """Token-like pieces (a word with its leading space, or one CJK character) that join back to ``text``."""
    return _PIECE.findall(text)


def canonical_model(name: str) -> str:
    """Ollama's model name normalisation: a name without a tag means ``:latest``."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


@dataclass
class ChatBehaviour:
    """How ``/api/chat`` answers. Change fields between requests; the handler reads them per request."""

    reply: str | Callable[[dict[str, Any]], str] = "Answer from the context [1]."
    models: list[str] = field(default_factory=lambda: [DEFAULT_MODEL])
    # Models with the "thinking" capability; like Ollama, "think": true for any other model is a 400.
    thinking_models: list[str] = field(default_factory=list)
    # After this many content pieces, fail: "error" streams {"error": error_message}; "drop" closes the socket.
    fail_after: int | None = None
    failure: Literal["error", "drop"] = "error"
    error_message: str = RUNNER_ERROR
    # Seconds before the response starts (status line included), and between streamed pieces.
    first_byte_delay_s: float = 0.0
    piece_delay_s: float = 0.0
    # Answer every chat request with this HTTP status and {"error": message} instead.
    http_error: tuple[int, str] | None = None


@dataclass
class RecordedRequest:
    """One request as received: method, path, parsed JSON body (None when absent) and headers."""

    method: str
    path: str
    body: dict[str, Any] | None
    headers: dict[str, str]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _details() -> dict[str, Any]:
    return {"parent_model": "", "format": "gguf", "family": "qwen2", "families": ["qwen2"],
            "parameter_size": "3.1B", "quantization_level": "Q4_K_M"}


class OllamaTestServer:
    """A threaded Ollama-protocol server on 127.0.0.1; use as a context manager or start() / stop()."""

    def __init__(self, behaviour: ChatBehaviour | None = None) -> None:
        self.behaviour = behaviour or ChatBehaviour()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="ollama-test-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> OllamaTestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers that are sleeping to simulate a slow model
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> OllamaTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of the ``/api/chat`` requests received so far, oldest first."""
        with self._lock:
            return [r.body or {} for r in self.requests if r.path == "/api/chat"]

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the server stops first; True when it is stopping."""
        return self._stopping.wait(seconds) if seconds > 0 else self._stopping.is_set()

    def knows(self, model: str) -> bool:
        return canonical_model(model) in {canonical_model(m) for m in self.behaviour.models}

    def thinks(self, model: str) -> bool:
        return canonical_model(model) in {canonical_model(m) for m in self.behaviour.thinking_models}


def _make_handler(server: OllamaTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_OllamaHandler):
        owner = server

    return Handler


class _OllamaHandler(BaseHTTPRequestHandler):
    owner: OllamaTestServer
    protocol_version = "HTTP/1.1"  # keep-alive like Ollama; bodies carry Content-Length or chunked encoding
    server_version = "ollama-test"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    # -- request plumbing -------------------------------------------------------------------------------
    def _read_body(self) -> tuple[bytes, dict[str, Any] | None]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        return raw, body if isinstance(body, dict) or body is None else None

    def _record(self, body: dict[str, Any] | None) -> None:
        self.owner.record(RecordedRequest(self.command, self.path, body, dict(self.headers.items())))

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_text(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _write_chunk(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    # -- routes ---------------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._record(None)
        self._send_text(200, "Ollama is running")

    def do_GET(self) -> None:
        self._record(None)
        if self.path == "/":
            self._send_text(200, "Ollama is running")
        elif self.path == "/api/version":
            self._send_json(200, {"version": OLLAMA_VERSION})
        elif self.path == "/api/tags":
            self._send_json(200, {"models": [self._model_entry(m) for m in self.owner.behaviour.models]})
        else:
            self._send_text(404, "404 page not found")

    def do_POST(self) -> None:
        raw, body = self._read_body()
        self._record(body)
        if self.path not in ("/api/chat", "/api/show"):
            self._send_text(404, "404 page not found")
            return
        if body is None:
            self._send_json(400, {"error": "invalid character in request body" if raw else "missing request body"})
            return
        try:
            if self.path == "/api/show":
                self._show(body)
            else:
                self._chat(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout); nothing to do

    def _model_entry(self, name: str) -> dict[str, Any]:
        return {"name": name, "model": name, "modified_at": "2025-10-01T12:00:00.000000Z", "size": 1929912432,
                "digest": "357c53fb659c5076de1d65ccb0b397446227b71a42be9d1603d46168015c9e4b",
                "details": _details()}

    def _show(self, body: dict[str, Any]) -> None:
        name = str(body.get("model") or body.get("name") or "")
        if not self.owner.knows(name):
            self._send_json(404, {"error": f"model '{name}' not found"})
            return
        self._send_json(200, {
            "license": "Apache License 2.0", "modelfile": f"FROM {name}\n", "parameters": "stop \"<|im_end|>\"",
            "template": "{{ .Prompt }}", "details": _details(),
            "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768},
            "capabilities": ["completion", "tools", *(["thinking"] if self.owner.thinks(name) else [])],
            "modified_at": "2025-10-01T12:00:00.000000Z",
        })

    def _chat(self, body: dict[str, Any]) -> None:
        behaviour = self.owner.behaviour
        model = str(body.get("model") or "")
        if self.owner.sleep(behaviour.first_byte_delay_s):
            return
        if behaviour.http_error is not None:
            status, message = behaviour.http_error
            self._send_json(status, {"error": message})
            return
        if not model:
            self._send_json(400, {"error": "model is required"})
            return
        if not self.owner.knows(model):
            self._send_json(404, {"error": f'model "{model}" not found, try pulling it first'})
            return
        if body.get("think") not in (None, False) and not self.owner.thinks(model):
            self._send_json(400, {"error": f'"{model}" does not support thinking'})
            return
        reply = behaviour.reply(body) if callable(behaviour.reply) else behaviour.reply
        if body.get("stream", True):
            self._stream_chat(body, model, reply, behaviour)
        else:
            self._send_json(200, {**self._head(model), "message": {"role": "assistant", "content": reply},
                                  **self._final(body, reply)})

    def _stream_chat(self, body: dict[str, Any], model: str, reply: str, behaviour: ChatBehaviour) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, piece in enumerate(_pieces(reply)):
            if behaviour.fail_after is not None and i == behaviour.fail_after:
                if behaviour.failure == "error":
                    self._write_chunk({"error": behaviour.error_message})
                    self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True
                return
            if i and self.owner.sleep(behaviour.piece_delay_s):
                return
            self._write_chunk({**self._head(model), "message": {"role": "assistant", "content": piece},
                               "done": False})
        self._write_chunk({**self._head(model), "message": {"role": "assistant", "content": ""},
                           **self._final(body, reply)})
        self.wfile.write(b"0\r\n\r\n")

    def _head(self, model: str) -> dict[str, Any]:
        return {"model": model, "created_at": _now()}

    def _final(self, body: dict[str, Any], reply: str) -> dict[str, Any]:
        prompt_chars = sum(len(str(m.get("content") or "")) for m in body.get("messages") or [])
        return {"done": True, "done_reason": "stop", "total_duration": 1_500_000,
                "load_duration": 120_000, "prompt_eval_count": max(1, prompt_chars // 4),
                "prompt_eval_duration": 400_000, "eval_count": max(1, len(split_pieces(reply))),
                "eval_duration": 900_000}


def _pieces(reply: str) -> Iterator[str]:
    yield from split_pieces(reply) or [""]
