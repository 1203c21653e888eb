"""Conversation history for follow-up questions: the turns kept, bounded in number and characters."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_MIN_TURN_CHARS = 40  # a turn cut shorter than this is more confusing than helpful
_PREFIX = re.compile(r"^(standalone question|question|独立问题|问题)\s*[:：]\s*", re.IGNORECASE)
_QUOTES = "\"'“”‘’「」『』`"


@dataclass(frozen=True)
class Turn:
    """One earlier exchange: the user's question and the answer shown."""

    question: str
    answer: str


HistoryLike = Sequence[Turn | tuple[str, str]]


def bound_history(history: HistoryLike, max_turns: int, max_chars: int) -> list[Turn]:
    """The most recent turns, at most ``max_turns`` and ``max_chars`` characters together, oldest first.

    Newer turns win: turns are taken from the newest back while they fit; the first one that does not fit
    is cut (question first, then the start of its answer) if a useful part fits, and older ones are dropped.
    """
    turns = [t if isinstance(t, Turn) else Turn(str(t[0]), str(t[1])) for t in history]
    turns = [Turn(t.question.strip(), t.answer.strip()) for t in turns if t.question.strip()]
    if max_turns <= 0 or max_chars <= 0:
        return []
    kept: list[Turn] = []
    budget = max_chars
    for turn in reversed(turns[-max_turns:]):
        size = len(turn.question) + len(turn.answer)
        if size <= budget:
            kept.append(turn)
            budget -= size
            continue
        if budget >= _MIN_TURN_CHARS:
            question = turn.question[:budget]
            answer = turn.answer[: max(0, budget - len(question) - 1)]
            kept.append(Turn(question, answer.rstrip() + "…" if answer else ""))
        break
    return kept[::-1]


def history_chars(turns: Sequence[Turn]) -> int:
    """Characters the turns take (questions and answers)."""
    return sum(len(t.question) + len(t.answer) for t in turns)


def clean_standalone(text: str, fallback: str) -> str:
    """The rewritten question from the model's reply: first non-empty line, without a label or quotes."""
    for line in text.splitlines():
        line = _PREFIX.sub("", line.strip()).strip().strip(_QUOTES).strip()
        if line:
            return line
    return fallback
