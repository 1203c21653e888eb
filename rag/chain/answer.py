"""The answering chain: question -> (standalone question) -> retriever -> prompt -> ChatOllama -> cited answer.

Built from LangChain Runnables (``prompt | ChatOllama | StrOutputParser``) around any ``BaseRetriever``.
Retrieval runs before the LLM is asked, so the documents are available before the first token and survive
every LLM failure; failures become a message and a kind on the result, never an exception. When nothing is
retrieved (no chunk passes retrieval.min_score) the answer is "no relevant content", without an LLM request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable
from langchain_ollama import ChatOllama

from rag.chain.errors import EmptyQuestionError, ErrorKind, LLMError, translate_llm_error
from rag.chain.history import HistoryLike, Turn, bound_history, clean_standalone
from rag.chain.prompts import (
    NO_CONTENT,
    Language,
    answer_prompt,
    condense_prompt,
    detect_language,
    fit_blocks,
    format_context,
    format_history,
    has_words,
)
from rag.config import LLMSettings

_CITATION = re.compile(r"[\[［【]\s*(\d{1,3}(?:\s*[,，、;；]\s*\d{1,3})*)\s*[\]］】]")


def make_chat_model(llm: LLMSettings) -> ChatOllama:
    """ChatOllama for these settings: num_ctx and reasoning sent with every request, httpx timeout_s."""
    return ChatOllama(base_url=llm.base_url, model=llm.model, temperature=llm.temperature, num_ctx=llm.num_ctx,
                      reasoning=llm.reasoning, client_kwargs={"timeout": llm.timeout_s})


def cited_numbers(text: str) -> list[int]:
    """Block numbers cited as [n], [n, m], [n][m] or 【n】, in order of first citation."""
    seen: dict[int, None] = {}
    for match in _CITATION.finditer(text):
        for number in re.split(r"[,，、;；]", match.group(1)):
            seen.setdefault(int(number), None)
    return list(seen)


def citations(text: str, documents: list[Document]) -> dict[int, Document]:
    """The cited blocks that exist, number -> document, in order of first citation."""
    return {n: documents[n - 1] for n in cited_numbers(text) if 1 <= n <= len(documents)}


@dataclass
class Answer:
    """A finished (or failed) answer with its retrieval.

    ``documents`` is everything retrieved; the first ``context_blocks`` of them were sent to the model, as
    blocks [1] .. [context_blocks] (fewer than all only when they would not fit into llm.num_ctx).
    """

    question: str
    standalone_question: str
    language: Language
    documents: list[Document]
    text: str = ""
    error: str | None = None
    error_kind: ErrorKind | None = None
    partial: bool = False
    no_context: bool = False
    context_blocks: int = 0

    @property
    def citations(self) -> dict[int, Document]:
        return citations(self.text, self.documents[: self.context_blocks])

    @property
    def ok(self) -> bool:
        return self.error is None

    def fail(self, error: LLMError) -> None:
        self.error, self.error_kind, self.partial = str(error), error.kind, bool(self.text)


class AnswerStream:
    """Iterate for the answer's text pieces (e.g. ``st.write_stream(stream)``); the result fills in as it goes.

    ``documents`` is set before the first piece. Iteration never raises for an LLM failure: it ends, and
    ``error`` / ``error_kind`` / ``partial`` say what happened. It is an iterator: it can be read once.
    """

    def __init__(self, answer: Answer, pieces: Callable[[], Iterator[str]] | None, llm: LLMSettings) -> None:
        self.answer = answer
        self._pieces = pieces
        self._llm = llm
        self._iterator = self._run()
        self.done = False

    def __iter__(self) -> AnswerStream:
        return self

    def __next__(self) -> str:
        return next(self._iterator)

    def close(self) -> None:
        """Stop reading (e.g. the user pressed stop); the connection to Ollama is closed."""
        self._iterator.close()

    def _run(self) -> Iterator[str]:
        if self._pieces is None:  # no context, or the follow-up rewrite already failed
            if self.answer.text:
                yield self.answer.text
            self.done = True
            return
        try:
            for piece in self._pieces():
                if piece:
                    self.answer.text += piece
                    yield piece
        except Exception as exc:
            error = translate_llm_error(exc, self._llm, partial=bool(self.answer.text))
            if error is None:
                raise
            self.answer.fail(error)
        self.done = True

    def consume(self) -> Answer:
        """Read the rest of the stream and return the result."""
        for _ in self:
            pass
        return self.answer

    @property
    def text(self) -> str:
        return self.answer.text

    @property
    def documents(self) -> list[Document]:
        return self.answer.documents

    @property
    def citations(self) -> dict[int, Document]:
        return self.answer.citations

    @property
    def error(self) -> str | None:
        return self.answer.error

    @property
    def error_kind(self) -> ErrorKind | None:
        return self.answer.error_kind

    @property
    def partial(self) -> bool:
        return self.answer.partial

    @property
    def language(self) -> Language:
        return self.answer.language

    @property
    def standalone_question(self) -> str:
        return self.answer.standalone_question

    @property
    def no_context(self) -> bool:
        return self.answer.no_context

    @property
    def context_blocks(self) -> int:
        return self.answer.context_blocks


class AnswerChain:
    """Answers questions from a retriever with a local Ollama model; see the module docstring."""

    def __init__(self, retriever: BaseRetriever, llm: LLMSettings, chat_model: BaseChatModel | None = None) -> None:
        self.retriever = retriever
        self.llm = llm
        self.chat_model = chat_model or make_chat_model(llm)
        # invoke() makes real non-streaming requests ("stream": false); stream() streams NDJSON.
        self._models: dict[bool, Runnable[Any, Any]] = {True: self.chat_model,
                                                         False: self.chat_model.bind(stream=False)}

    def answer_runnable(self, language: Language, streaming: bool = True) -> Runnable[dict[str, str], str]:
        """``prompt | model | str``; input ``{"context": ..., "question": ...}``."""
        return answer_prompt(language) | self._models[streaming] | StrOutputParser()

    def condense_runnable(self, language: Language, streaming: bool = True) -> Runnable[dict[str, str], str]:
        """``prompt | model | str``; input ``{"history": ..., "question": ...}``; the model's rewrite."""
        return condense_prompt(language) | self._models[streaming] | StrOutputParser()

    def stream(self, question: str, history: HistoryLike = ()) -> AnswerStream:
        """Retrieve now, then stream the answer lazily while the returned object is iterated."""
        answer, inputs = self._prepare(question, history, streaming=True)
        if inputs is None:
            return AnswerStream(answer, None, self.llm)
        return AnswerStream(answer, lambda: self._stream_pieces(answer.language, inputs), self.llm)

    def _stream_pieces(self, language: Language, inputs: dict[str, str]) -> Iterator[str]:
        # prompt, then model.stream, rather than answer_runnable().stream(): closing a RunnableSequence's stream
        # early drains it to the end, so a reader who stops would wait for the whole answer.
        messages = answer_prompt(language).invoke(inputs)
        for chunk in self.chat_model.stream(messages):
            yield chunk.text

    def invoke(self, question: str, history: HistoryLike = ()) -> Answer:
        """The whole answer from one non-streaming request."""
        answer, inputs = self._prepare(question, history, streaming=False)
        if inputs is not None:
            try:
                answer.text = self.answer_runnable(answer.language, streaming=False).invoke(inputs)
            except Exception as exc:
                error = translate_llm_error(exc, self.llm)
                if error is None:
                    raise
                answer.fail(error)
        return answer

    def _prepare(self, question: str, history: HistoryLike, streaming: bool) -> tuple[Answer, dict[str, str] | None]:
        """Rewrite a follow-up, retrieve, and build the prompt inputs (None when the LLM must not be asked)."""
        question = question.strip()
        if not question:
            raise EmptyQuestionError()
        turns = bound_history(history, self.llm.history_turns, self.llm.history_chars)
        language = _question_language(question, turns)
        standalone, error = question, None
        if turns:
            try:
                rewrite = self.condense_runnable(language, streaming).invoke(
                    {"history": format_history([(t.question, t.answer) for t in turns], language),
                     "question": question})
                standalone = clean_standalone(rewrite, question)
            except Exception as exc:
                error = translate_llm_error(exc, self.llm)
                if error is None:
                    raise
        answer = Answer(question, standalone, language, list(self.retriever.invoke(standalone)))
        if error is not None:
            answer.fail(error)
            return answer, None
        if not answer.documents:
            answer.text, answer.no_context = NO_CONTENT[language], True
            return answer, None
        answer.context_blocks = fit_blocks(answer.documents, standalone, language, self.llm.num_ctx)
        blocks = answer.documents[: answer.context_blocks]
        return answer, {"context": format_context(blocks, language), "question": standalone}


def _question_language(question: str, turns: list[Turn]) -> Language:
    """The question's language; a question without letters (e.g. "2?") takes the last turn's."""
    if turns and not has_words(question):
        return detect_language(turns[-1].question)
    return detect_language(question)
