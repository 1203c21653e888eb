"""The answering chain: retrieval -> numbered context -> local Ollama model -> cited answer, and Ollama checks."""

from rag.chain.answer import Answer, AnswerChain, AnswerStream, citations, cited_numbers, make_chat_model
from rag.chain.errors import (
    EmptyQuestionError,
    ErrorKind,
    LLMError,
    LLMModelMissingError,
    LLMOfflineError,
    LLMResponseError,
    LLMStreamError,
    LLMTimeoutError,
    translate_llm_error,
)
from rag.chain.history import Turn, bound_history
from rag.chain.ollama_status import OllamaStatus, check_ollama
from rag.chain.prompts import NO_CONTENT, Language, detect_language, format_context

__all__ = [
    "NO_CONTENT",
    "Answer",
    "AnswerChain",
    "AnswerStream",
    "EmptyQuestionError",
    "ErrorKind",
    "LLMError",
    "LLMModelMissingError",
    "LLMOfflineError",
    "LLMResponseError",
    "LLMStreamError",
    "LLMTimeoutError",
    "Language",
    "OllamaStatus",
    "Turn",
    "bound_history",
    "check_ollama",
    "citations",
    "cited_numbers",
    "detect_language",
    "format_context",
    "make_chat_model",
    "translate_llm_error",
]
