"""LLM failures as user messages: what went wrong with Ollama and what to do about it.

The `ollama` client raises different things for the same problem depending on the call: a streaming call lets
``httpx`` errors through (``httpx.ConnectError``, ``httpx.ReadTimeout``, ``httpx.RemoteProtocolError``), a
non-streaming one turns a refused connection into the builtin ``ConnectionError``; both raise
``ollama.ResponseError`` for an HTTP error status (404 for a model that is not pulled) and for an
``{"error": ...}`` line in the middle of a stream (status code -1). :func:`translate_llm_error` maps all of
them onto the classes below.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import httpx
from ollama import ResponseError

from rag.config import LLMSettings
from rag.errors import RagError

ErrorKind = Literal["offline", "model_missing", "timeout", "mid_stream", "llm_error"]


class LLMError(RagError):
    """The local LLM could not (fully) answer; ``kind`` says why, the message says what to do."""

    kind: ClassVar[ErrorKind] = "llm_error"


class LLMOfflineError(LLMError):
    """Nothing answers at llm.base_url."""

    kind = "offline"


class LLMModelMissingError(LLMError):
    """Ollama runs but has not pulled llm.model."""

    kind = "model_missing"


class LLMTimeoutError(LLMError):
    """The model sent nothing for llm.timeout_s seconds."""

    kind = "timeout"


class LLMStreamError(LLMError):
    """The answer broke off: Ollama streamed an error or closed the connection."""

    kind = "mid_stream"


class LLMResponseError(LLMError):
    """Ollama answered with an error status other than a missing model (e.g. out of memory)."""


def offline_message(base_url: str) -> str:
    return (f"LLM offline at {base_url}: start `ollama serve` or `docker compose up`, "
            "or point llm.base_url at a running Ollama.")


def model_missing_message(model: str, base_url: str) -> str:
    return (f"Model `{model}` is not available on the Ollama server at {base_url}: run `ollama pull {model}` "
            f"(with docker compose: `docker compose exec ollama ollama pull {model}`), or set llm.model to a "
            "model you have pulled.")


def translate_llm_error(exc: BaseException, llm: LLMSettings, *, partial: bool = False) -> LLMError | None:
    """The user-facing error for an exception from a ChatOllama call, or None if it is not an LLM failure.

    ``partial`` says whether part of the answer had already arrived; the message then says it is kept.
    """
    url, model = llm.base_url, llm.model
    kept = " The partial answer is kept and marked incomplete." if partial else ""
    if isinstance(exc, LLMError):
        return exc
    # The ollama client raises the builtin ConnectionError itself; its subclasses (resets) are not "offline".
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)) or type(exc) is ConnectionError:
        return LLMOfflineError(offline_message(url))
    if isinstance(exc, httpx.TimeoutException):
        if partial:
            return LLMTimeoutError(f"`{model}` at {url} stopped sending for more than {llm.timeout_s:g} s."
                                   f"{kept} Try again, use a smaller model, or raise llm.timeout_s.")
        return LLMTimeoutError(
            f"No answer from `{model}` at {url} within {llm.timeout_s:g} s: the model may still be loading or be "
            "too slow for this machine. Try again, use a smaller model, or raise llm.timeout_s.")
    if isinstance(exc, ResponseError):
        detail = str(exc.error).strip() or "no details"
        if exc.status_code == 404 and "not found" in detail.lower():
            return LLMModelMissingError(model_missing_message(model, url))
        if exc.status_code == 400 and "does not support thinking" in detail:
            return LLMResponseError(f"`{model}` is not a thinking model ({detail}): set llm.reasoning to false, "
                                    "or choose a thinking model such as qwen3.")
        if exc.status_code == -1:  # an {"error": ...} line inside a 200 stream
            return LLMStreamError(f"The answer was cut off by an error from Ollama: {detail}.{kept} "
                                  "Try again; if it keeps happening, check the Ollama server log.")
        return LLMResponseError(f"Ollama at {url} refused the request for `{model}` (HTTP {exc.status_code}): "
                                f"{detail}. Check the Ollama server log.")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.StreamError)):
        return LLMStreamError(f"The connection to Ollama at {url} broke off during the answer ({exc}).{kept} "
                              "Try again; if it keeps happening, check that the Ollama server did not restart.")
    if isinstance(exc, httpx.HTTPError):
        return LLMResponseError(f"The request to Ollama at {url} failed: {exc}. Check llm.base_url and the server.")
    return None


class EmptyQuestionError(RagError):
    """The question is empty or only whitespace."""

    def __init__(self) -> None:
        super().__init__("The question is empty: type a question to ask the knowledge base.")
