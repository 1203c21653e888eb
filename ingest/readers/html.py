"""HTML (.html/.htm): the visible text, one line per block element, split into sections at h1-h3; tables as
Markdown rows (see ingest.readers.tables)."""

from __future__ import annotations

import codecs
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from bs4 import BeautifulSoup, NavigableString, Tag, XMLParsedAsHTMLWarning
from bs4.dammit import EncodingDetector, UnicodeDammit
from bs4.element import PreformattedString

from ingest.readers.base import ReadError, SourceDocument
from ingest.readers.encoding import decode_text
from ingest.readers.sections import HeadingSections
from ingest.readers.tables import markdown_table

_DROP = {
    "head", "title", "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas",
}
_BLOCK = {
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "footer", "form", "h4", "h5", "h6", "header", "hgroup", "hr",
    "html", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead",
    "ul",
}
_SECTION_HEADINGS = {"h1": 1, "h2": 2, "h3": 3}
_WHATWG_CODECS = {"gb2312": "gb18030", "gbk": "gb18030", "iso8859-1": "cp1252", "ascii": "cp1252"}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_BREAK = "\n"


@dataclass
class _Heading:
    level: int
    text: str


@dataclass
class _Table:
    head: str
    rows: list[str]

    @property
    def text(self) -> str:
        return "\n".join([self.head, *self.rows] if self.head else self.rows)


def read_html(data: bytes, path: Path) -> SourceDocument:
    """Visible text of an HTML page; title from <title>, else the first <h1>, else the file stem."""
    with warnings.catch_warnings():  # XHTML starts with an XML declaration: the HTML parser is meant for it
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(decode_html(data), "lxml")
    tokens: list[str | _Heading | _Table] = []
    try:
        title = _inline(soup.title) if soup.title else ""
        _walk(soup, tokens)
    except RecursionError as exc:
        raise ReadError("HTML elements nested too deeply to read") from exc
    if not title:
        title = next((t.text for t in tokens if isinstance(t, _Heading) and t.level == 1), "") or path.stem
    builder = HeadingSections()
    lines: list[str] = []
    for token in _lines(tokens):
        if isinstance(token, _Heading):
            builder.heading(token.level, token.text)
            lines.append(token.text)
        elif isinstance(token, _Table):
            builder.table(token.head, token.rows)
            lines.append(token.text)
        else:
            builder.line(token)
            lines.append(token)
    sections = builder.finish()
    if not sections:
        raise ReadError("no visible text in HTML")
    content = f"{title}\n\n" + "\n".join(lines)
    return SourceDocument(None, title, sections, content, {"file_type": "html"})


def decode_html(data: bytes) -> str:
    """Decode by byte-order mark, else by the declared charset when it fits, else guess as for text files.

    bs4's EncodingDetector finds the BOM and the ``<meta>`` (or XML) declaration; the declared name is read
    as browsers do (WHATWG): GB2312/GBK as GB18030, Latin-1/ASCII as CP1252, a UTF-16/32 declaration
    ignored (bytes that say so carry a BOM). A wrong declaration is common, so one that does not decode
    falls back to guessing.
    """
    _, bom = EncodingDetector.strip_byte_order_mark(data)
    declared = None if bom else EncodingDetector.find_declared_encoding(data, is_html=True)
    encoding = _codec(declared) if declared else None
    if encoding:
        try:
            return data.decode(encoding).replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError:
            pass
    return decode_text(data)


def _codec(declared: str) -> str | None:
    """The Python codec browsers use for a declared charset name, or None when unknown or not usable."""
    try:
        name = codecs.lookup(UnicodeDammit.CHARSET_ALIASES.get(declared, declared).strip()).name
    except (LookupError, ValueError):
        return None
    name = _WHATWG_CODECS.get(name, name)
    return None if name.startswith(("utf-16", "utf-32")) else name


def _walk(node: Tag, out: list[str | _Heading | _Table], pre: bool = False, tables: bool = True) -> None:
    """Append ``node``'s visible text to ``out``: strings, line breaks, h1-h3 headings and (``tables``) tables."""
    for child in node.children:
        if isinstance(child, PreformattedString):  # comments, doctype, CDATA, processing instructions
            continue
        if isinstance(child, NavigableString):
            out.append(str(child) if pre else _collapse(str(child)))
            continue
        if not isinstance(child, Tag) or child.name in _DROP or _hidden(child):
            continue
        if child.name == "br":
            out.append(_BREAK)
        elif child.name in _SECTION_HEADINGS:
            if text := _inline(child):
                out.append(_Heading(_SECTION_HEADINGS[child.name], text))
        elif child.name == "table" and tables and (table := _table(child)):
            out.append(table)
        elif child.name == "tr":
            cells = [_inline(cell) for cell in child.find_all(["td", "th"], recursive=False)]
            out.extend([_BREAK, " | ".join(c for c in cells if c), _BREAK])
        else:
            block = child.name in _BLOCK
            if block:
                out.append(_BREAK)
            _walk(child, out, pre or child.name == "pre", tables)
            if block:
                out.append(_BREAK)


def _lines(tokens: list[str | _Heading | _Table]) -> list[str | _Heading | _Table]:
    """Join inline fragments into lines with collapsed whitespace; drop empty lines."""
    out: list[str | _Heading | _Table] = []
    buffer: list[str] = []

    def flush() -> None:
        line = " ".join("".join(buffer).split())
        if line:
            out.append(line)
        buffer.clear()

    for token in tokens:
        if isinstance(token, _Heading | _Table):
            flush()
            out.append(token)
            continue
        first, *rest = token.split("\n")
        buffer.append(first)
        for part in rest:
            flush()
            buffer.append(part)
    flush()
    return out


def _table(table: Tag) -> _Table | None:
    """A data table as Markdown lines: the <thead> rows as header, else the first row, under the caption;
    cells spanning columns are followed by empty cells. None for a layout table (one holding another table):
    its content is read as text."""
    if table.find("table") is not None:
        return None
    rows = [row for row in table.find_all("tr") if not _hidden(row)]
    grid: list[list[str]] = []
    for row in rows:
        cells: list[str] = []
        for cell in row.find_all(["td", "th"], recursive=False):
            if _hidden(cell):
                continue
            cells.append(_inline(cell))
            span = str(cell.get("colspan") or "")
            cells.extend([""] * (min(int(span), 100) - 1 if span.isdigit() else 0))
        grid.append(cells)
    header_rows = next((i for i, row in enumerate(rows) if row.find_parent("thead") is None), len(rows))
    found = markdown_table(grid, header_rows or 1)
    if found is None:
        return None
    caption = _inline(table.caption) if table.caption and not _hidden(table.caption) else ""
    head, lines = found
    return _Table("\n".join(p for p in (caption, head) if p), lines)


def _inline(tag: Tag) -> str:
    """A tag's visible text as one line."""
    tokens: list[str | _Heading | _Table] = []
    _walk(tag, tokens, tables=False)
    return " ".join(" ".join(t if isinstance(t, str) else t.text for t in tokens).split())


def _collapse(text: str) -> str:
    """HTML whitespace collapsing: each run of whitespace, newlines included, becomes one space."""
    return re.sub(r"\s+", " ", text)


def _hidden(tag: Tag) -> bool:
    return tag.has_attr("hidden") or bool(_HIDDEN_STYLE.search(str(tag.get("style") or "")))
