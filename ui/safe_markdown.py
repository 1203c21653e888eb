"""Untrusted text (LLM answers, document text, file names) shown so that it cannot load anything from the network.

Two ways, for the two kinds of places:

- :func:`markdown_html` for Markdown worth rendering (answers): markdown-it-py parses it (CommonMark + tables +
  strikethrough, raw HTML off, so HTML in the text is escaped) and renders HTML in which an image becomes the text
  ``[image: alt]`` and a link becomes its label followed by its URL as inline code: no ``<img>``, no ``<a>``.
  Show it with ``st.markdown(html, unsafe_allow_html=True)``: the result is one or more HTML blocks (code-block
  line breaks are written as ``&#10;``, so no blank line ends a block early), which Streamlit's Markdown passes
  through as they are, so its extensions (GFM autolinks of bare URLs, ``$`` LaTeX, ``:material/...:`` icons,
  coloured text) never see the untrusted text.
- :func:`escape_markdown` for plain-text places (captions, error boxes, widget labels): every ASCII punctuation
  character is backslash-escaped, so the text shows exactly as it is, with no Markdown construct at all.
  :func:`code_span` for a path or URL shown as code.

Streamlit 1.67 also renders Markdown images in st.table cells, expander labels, radio options and toasts (checked
in Chromium); selectbox / multiselect options and st.dataframe cells are plain text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

IMAGE_LABEL = "[image: {alt}]"
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?<=[A-Za-z])(?=://)|(?<=www)(?=\.)|(?=@)", re.IGNORECASE)
_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")


def escape_markdown(text: str) -> str:
    """``text`` as Markdown that shows exactly these characters: no link, image, emphasis, HTML or LaTeX.

    Streamlit finds GFM autolinks (``http://``, ``www.``, ``a@b.c``) in the text after escapes are resolved, so
    an invisible word joiner goes before ``://``, ``.`` after ``www`` and ``@``, which no autolink matches.
    """
    return _PUNCTUATION.sub(r"\\\1", _AUTOLINK.sub(WORD_JOINER, text))


def code_span(text: str) -> str:
    """``text`` (a path, a URL) as a Markdown code span that shows it exactly, backticks included.

    The fence is one backtick longer than the longest run inside, and spaces pad it so that text starting or
    ending with a backtick cannot close it (CommonMark strips one padding space on each side).
    """
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}"


def _image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    alt = self.renderInlineAsText(tokens[idx].children or [], options, env)
    return f'<span class="rs-image">{escape(IMAGE_LABEL.format(alt=alt.strip() or "-"))}</span>'


def _link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    """Nothing: the label shows as text; an autolink's label is its URL, shown as code."""
    autolink = tokens[idx].markup == "autolink"
    env.setdefault("links", []).append(None if autolink else str(tokens[idx].attrGet("href") or ""))
    return "<code>" if autolink else ""


def _link_close(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    """After the label, the URL as code (not a link)."""
    href = env["links"].pop()
    return "</code>" if href is None else f" (<code>{escape(href)}</code>)"


def _code_block(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
    """A fenced or indented code block without a language class, line breaks as ``&#10;``."""
    return f"<pre><code>{escape(tokens[idx].content, quote=False).replace(chr(10), '&#10;')}</code></pre>\n"


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    md.add_render_rule("fence", _code_block)
    md.add_render_rule("code_block", _code_block)
    return md


_MD = _parser()


def markdown_html(text: str) -> str:
    """Untrusted Markdown as HTML that loads nothing and links nowhere, for ``st.markdown(unsafe_allow_html=True)``.

    Paragraphs, emphasis, lists, headings, quotes, code, tables and citations like ``[1]`` render as usual.
    """
    html = _MD.render(text, {})
    return html if html.strip() else ""
