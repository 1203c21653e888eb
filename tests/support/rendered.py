"""The text a reader sees for a Markdown string the app hands Streamlit (escaped text, or ui.safe_markdown's HTML)."""

from __future__ import annotations

from html.parser import HTMLParser

from markdown_it import MarkdownIt

_MD = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
WORD_JOINER = "\u2060"  # invisible; ui.safe_markdown puts it where Streamlit would otherwise autolink


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(markdown: str) -> str:
    """``markdown`` rendered (CommonMark, raw HTML passed through), tags dropped, entities decoded, trimmed."""
    parser = _Text()
    parser.feed(_MD.render(markdown))
    parser.close()
    return "".join(parser.parts).replace(WORD_JOINER, "").strip()
