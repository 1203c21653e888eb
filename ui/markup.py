"""HTML of a score card: every piece of chunk or file text is escaped, so HTML in a document shows as text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from rag.config import LevelSettings
from rag.retrieval import Provenance, ScoreFusion, Scores
from rag.similarity import level_for, level_label

LEVEL_COLOURS = {"very_similar": "#1a7f37", "related": "#b26a00", "unrelated": "#c62828"}
LEVEL_BACKGROUNDS = {"very_similar": "#e6f4ea", "related": "#fff4e0", "unrelated": "#fdecea"}
_WORDLIKE = re.compile(r"^[A-Za-z0-9]+$")


def visible_term(term: str) -> bool:
    """Whether a matched term is worth showing: it has a letter or digit (not only a word-start marker)."""
    return any(ch.isalnum() for ch in term)


def highlight(text: str, terms: Iterable[str]) -> str:
    """``text`` HTML-escaped, with each occurrence of a matched term wrapped in ``<mark>``.

    Latin / digit terms of two or more characters match case-insensitively at the start of a word; other
    terms (CJK characters) anywhere. Single Latin letters and punctuation-only terms are not marked.
    """
    patterns = []
    for term in sorted({t.strip() for t in terms if t and t.strip()}, key=len, reverse=True):
        if not visible_term(term) or (len(term) < 2 and term.isascii()):
            continue
        quoted = re.escape(term)
        patterns.append(rf"(?<![A-Za-z0-9]){quoted}" if _WORDLIKE.match(term) else quoted)
    if not patterns:
        return escape(text)
    out, last = [], 0
    for match in re.finditer("|".join(patterns), text, flags=re.IGNORECASE):
        out.append(escape(text[last:match.start()]))
        out.append(f"<mark>{escape(match.group(0))}</mark>")
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)


def bar(value: float, scale: float = 1.0, colour: str = "#4c78a8") -> str:
    """A small horizontal bar, ``value / scale`` of its width (clamped to 0..1)."""
    fraction = 0.0 if scale <= 0 else max(0.0, min(1.0, value / scale))
    return (f'<span style="display:inline-block;width:90px;height:8px;background:#e8e8e8;border-radius:4px;'
            f'vertical-align:middle;margin:0 6px"><span style="display:block;width:{fraction * 100:.0f}%;'
            f'height:8px;background:{colour};border-radius:4px"></span></span>')


def formula_lines(scores: Scores, rrf_k: int) -> list[str]:
    """How this chunk's final score was computed: the formulas, then with this chunk's numbers."""
    return ScoreFusion.of(scores, rrf_k).explain(scores)


def where(doc: Mapping[str, Any], page_label: str) -> str:
    """``source · p. 3 · heading`` for a card header (not escaped)."""
    origin = Provenance.from_metadata(doc)
    parts = [origin.source]
    if origin.has_page:
        parts.append(page_label)
    if origin.heading:
        parts.append(str(origin.heading))
    return " · ".join(parts)


def card_html(doc: Mapping[str, Any], levels: LevelSettings, labels: Mapping[str, str], rrf_k: int,
              cited: bool = False, show_kb: bool = False) -> str:
    """One score card: header, dense percent with its level colour, score bars, and the highlighted text.

    ``doc`` is a retrieved chunk as a dict (``text`` plus the Document metadata); ``labels`` holds the
    translated words chunk, page, cited and matched_terms (and slide: a .pptx chunk's page is its slide;
    ocr, the mark of text read by OCR). ``show_kb``: name the chunk's knowledge base (``kb``).
    """
    s = Scores.from_metadata(doc)
    origin = Provenance.from_metadata(doc)
    dense = float(s.dense)
    level = level_for(dense, levels)
    colour = LEVEL_COLOURS[level]
    rank = int(doc.get("rank", 0))
    meta = doc.get("metadata") or {}
    count = meta.get("chunk_count")
    number = origin.chunk_index + 1
    chunk = labels["chunk"].format(n=f"{number}/{count}" if isinstance(count, int) else number)
    unit = origin.page_unit if origin.page_unit in labels else "page"  # a slide's number
    head = escape(where(doc, labels[unit].format(n=origin.page)))
    cite = (f'<span style="background:#1f6feb;color:white;border-radius:4px;padding:0 5px;margin-left:6px;'
            f'font-size:0.8em">{escape(labels["cited"])}</span>') if cited else ""
    # text recognised from a scanned page or an image (it may hold OCR errors) is marked
    ocr = (f'<span data-ocr="true" style="background:#eee;color:#555;border-radius:4px;padding:0 5px;'
           f'margin-left:6px;font-size:0.8em">{escape(labels.get("ocr", "OCR"))}</span>') if meta.get("ocr") else ""
    kb = (f'<span data-kb="{escape(str(doc.get("kb", "")), quote=True)}" style="background:#eef2f7;color:#334;'
          f'border-radius:4px;padding:0 5px;margin-right:6px;font-size:0.85em">{escape(str(doc.get("kb", "")))}</span>'
          ) if show_kb else ""
    sparse_scale = max(1.0, float(s.sparse))
    rows = [f'<div>dense <b data-score="dense" style="color:{colour};font-size:1.25em">{dense * 100:.1f}%</b>'
            f'{bar(dense, 1.0, colour)}<span data-level="{level}" style="background:{LEVEL_BACKGROUNDS[level]};'
            f'color:{colour};border-radius:4px;padding:1px 6px">{escape(level_label(level))}</span></div>',
            f'<div>sparse <b data-score="sparse">{float(s.sparse):.4f}</b>'
            f'{bar(float(s.sparse), sparse_scale)}</div>']
    if s.colbert is not None:
        rows.append(f'<div>colbert <b data-score="colbert">{float(s.colbert):.4f}</b>'
                    f'{bar(float(s.colbert))}</div>')
    if s.rerank is not None:  # the cross-encoder: its sigmoid (what fusion uses) and, in grey, its logit
        rows.append(f'<div>rerank <b data-score="rerank">{float(s.rerank):.4f}</b>{bar(float(s.rerank))}'
                    f'<span style="color:#888">logit <span data-score="rerank_raw">{float(s.rerank_raw or 0.0):.4f}'
                    f'</span></span></div>')
    if s.hybrid is not None:
        tip = escape(" ; ".join(formula_lines(s, rrf_k)[1:3]), quote=True)
        rows.append(f'<div title="{tip}">hybrid <b data-score="hybrid">{float(s.hybrid):.4f}</b>'
                    f'{bar(float(s.hybrid))}<span style="color:#888">ⓘ</span></div>')
    if ScoreFusion.of(s, rrf_k).kind == "rrf":
        rows.append(f'<div>rrf <b data-score="rrf">{float(s.rrf):.4f}</b></div>')
    terms = [str(m["term"]) for m in doc.get("matched_terms") or []]
    term_line = ""
    if any(visible_term(term) for term in terms):
        shown = ", ".join(escape(term) for term in [x for x in terms if visible_term(x)][:12])
        term_line = f'<div style="color:#666;font-size:0.85em">{escape(labels["matched_terms"])}: {shown}</div>'
    text = highlight(str(doc.get("text", "")), terms)
    return (
        f'<div class="rs-card" data-rank="{rank}" data-chunk-id="{escape(str(doc.get("id", "")), quote=True)}" '
        f'data-level="{level}" data-dense="{dense:.6f}" style="border-left:5px solid {colour};padding:4px 10px">'
        f'<div style="font-weight:600">[{rank}] {kb}{head} <span style="color:#666;font-weight:400">· '
        f'{escape(chunk)}</span>{cite}{ocr}</div>'
        f'<div style="margin:4px 0;line-height:1.7">{"".join(rows)}</div>{term_line}'
        f'<div class="rs-text" style="white-space:pre-wrap;max-height:16em;overflow:auto;background:#fafafa;'
        f'padding:6px;border-radius:4px;margin-top:4px">{text}</div></div>'
    )
