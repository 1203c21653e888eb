"""OpenAI-compatible chat: POST /v1/chat/completions (streaming and not) and GET /v1/models.

``model`` names a knowledge base as ``ragscope/<kb>`` (``ragscope`` alone: api.default_kb, else kb.name); the
answer comes from the web app's chain (rag.chain.AnswerChain): the last user message is the question, the
user / assistant pairs before it are the history. The retrieved chunks with all their scores travel in an extra
``sources`` field of the response, and as a last SSE chunk (with no choices) before ``data: [DONE]``: a client
that knows shows them, any other OpenAI client reads a normal completion.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from langchain_core.documents import Document
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require_key
from api.errors import error_body, status_of
from api.services import Services
from rag.chain import AnswerStream, LLMError, LLMModelMissingError, LLMOfflineError, LLMTimeoutError, cited_numbers
from rag.errors import InvalidInputError, KnowledgeBaseNotFoundError

MODEL_PREFIX = "ragscope"

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])


class ChatMessage(BaseModel):
    """One message; ``content`` as text or as OpenAI's list of parts (the text parts are read)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """OpenAI's chat-completions request; options this server does not use (temperature, ...) are accepted."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "ragscope/default", "stream": False,
         "messages": [{"role": "user", "content": "How many days per week may employees work remotely?"}]},
    ]})

    model: str | None = Field(None, description="ragscope/<kb>, or ragscope for the default knowledge base.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


def kb_of_model(services: Services, model: str | None) -> str:
    """The knowledge base a model name means (see the module docstring)."""
    name = (model or "").strip()
    default = services.settings.api.default_kb or services.settings.kb.name
    if name in ("", MODEL_PREFIX):
        return default
    prefix, slash, kb = name.partition("/")
    if prefix == MODEL_PREFIX and slash and kb:
        return kb
    raise KnowledgeBaseNotFoundError(
        f"unknown model {name!r}: use ragscope/<knowledge base> (GET /v1/models lists them) or ragscope for the "
        f"default knowledge base ({default})."
    )


def question_and_history(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The last user message, and the (question, answer) pairs of the conversation before it."""
    talk = [(m.role, m.text()) for m in messages if m.role in ("user", "assistant")]
    if not talk or talk[-1][0] != "user" or not talk[-1][1].strip():
        raise InvalidInputError("the last message must be the user's question (role user, non-empty content).")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for role, text in talk[:-1]:
        if role == "user":
            pending = text
        elif pending is not None:
            history.append((pending, text))
            pending = None
    return talk[-1][1], history


def sources(documents: list[Document], text: str) -> list[dict[str, Any]]:
    """Each retrieved chunk as in /v1/retrieval, with its block number ``n`` and whether the answer cites it."""
    cited = set(cited_numbers(text))
    return [{"n": n, "cited": n in cited, "text": doc.page_content, **doc.metadata}
            for n, doc in enumerate(documents, start=1)]


@router.get("/models", summary="The knowledge bases, as OpenAI models named ragscope/<kb>")
def models(request: Request) -> dict[str, Any]:
    services: Services = request.app.state.services
    return {"object": "list", "data": [
        {"id": f"{MODEL_PREFIX}/{name}", "object": "model", "created": 0, "owned_by": MODEL_PREFIX}
        for name in services.knowledge_bases()
    ]}


@router.post("/chat/completions", summary="Answer from a knowledge base (OpenAI chat completions, SSE streaming)")
def chat_completions(body: ChatRequest, request: Request) -> Any:
    services: Services = request.app.state.services
    kb = kb_of_model(services, body.model)
    question, history = question_and_history(body.messages)
    stream = services.chain(kb).stream(question, history)
    # The first piece is read here, so that an LLM that is down is an error status, not an empty 200 stream.
    first = next(stream, None)
    reply = Reply(body.model or f"{MODEL_PREFIX}/{kb}", kb)
    if stream.error and not stream.text:
        stream.close()
        return reply.error_response(stream)
    if body.stream:
        return StreamingResponse(reply.events(stream, first), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    answer = stream.consume()
    if answer.error:
        return reply.error_response(stream)
    return reply.completion(stream)


class Reply:
    """The OpenAI-shaped objects of one answer."""

    def __init__(self, model: str, kb: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model
        self.kb = kb

    def _extras(self, stream: AnswerStream) -> dict[str, Any]:
        return {"sources": sources(stream.documents, stream.text), "kb": self.kb,
                "standalone_question": stream.standalone_question}

    def completion(self, stream: AnswerStream) -> dict[str, Any]:
        return {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": stream.text},
                         "finish_reason": "stop"}],
            **self._extras(stream),
        }

    def error_response(self, stream: AnswerStream) -> JSONResponse:
        """The LLM failed: its status (503 when Ollama is down or lacks the model) and message, with the sources."""
        status, error_type = _llm_status(stream)
        return JSONResponse({**error_body(stream.error or "", error_type, status), **self._extras(stream)},
                            status_code=status)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> str:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return _sse(chunk)

    def events(self, stream: AnswerStream, first: str | None) -> Iterator[str]:
        """SSE events: role, content pieces, stop (or an error event), the sources, [DONE]."""
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            if first:
                yield self._chunk({"content": first})
            for piece in stream:
                yield self._chunk({"content": piece})
            if stream.error:
                status, error_type = _llm_status(stream)
                yield _sse(error_body(stream.error, error_type, status))
            else:
                yield self._chunk({}, "stop")
            yield _sse({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.model, "choices": [], **self._extras(stream)})
            yield "data: [DONE]\n\n"
        finally:
            stream.close()


def _llm_status(stream: AnswerStream) -> tuple[int, str]:
    """The HTTP status and error type of the stream's LLM failure (503 when Ollama is down or lacks the model)."""
    kinds = {"offline": LLMOfflineError, "model_missing": LLMModelMissingError, "timeout": LLMTimeoutError}
    cls = kinds.get(stream.error_kind or "", LLMError)
    return status_of(cls(stream.error or ""))


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"
