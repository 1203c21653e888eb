"""Reading an OpenAI-style Server-Sent-Events body: the JSON of each ``data:`` line, and whether [DONE] ended it."""

from __future__ import annotations

import json
from typing import Any


def sse_events(body: str) -> tuple[list[dict[str, Any]], bool]:
    """The JSON events of ``body`` in order, and True when its last event is ``data: [DONE]``."""
    datas = [line[len("data: "):] for line in body.splitlines() if line.startswith("data: ")]
    done = bool(datas) and datas[-1] == "[DONE]"
    return [json.loads(data) for data in datas if data != "[DONE]"], done


def streamed_text(events: list[dict[str, Any]]) -> str:
    return "".join(choice["delta"].get("content") or "" for event in events for choice in event.get("choices", []))
