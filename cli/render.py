"""Rich rendering of retrieval results: one row per chunk with every score and the matched terms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

from clikit import safe
from rag.retrieval.chunk_scores import Scores
from rag.retrieval.provenance import Provenance

if TYPE_CHECKING:  # not imported at run time: a usage error of `rag` is reported without loading pymilvus
    from langchain_core.documents import Document

    from rag.retrieval import RetrievalResult

MAX_TERMS = 6


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def location(meta: dict[str, Any]) -> str:
    """``source``, with page or heading when the reader recorded one, and "(OCR)" for text read by OCR
    (plain text; :func:`row` escapes it)."""
    origin = Provenance.from_metadata(meta)
    where = origin.doc_id or origin.source
    if origin.page_label:
        where += f" {origin.page_label}"
    elif origin.heading:
        where += f" › {origin.heading}"
    if (meta.get("metadata") or {}).get("ocr"):
        where += " (OCR)"  # the text was recognised from a scanned page or an image
    return where


def terms(meta: dict[str, Any]) -> str:
    shown = [f"{t['term']} ({t['contribution']:.3f})" for t in meta.get("matched_terms", [])[:MAX_TERMS]]
    more = len(meta.get("matched_terms", [])) - MAX_TERMS
    return ", ".join(shown) + (f" +{more}" if more > 0 else "")


def results_table(result: RetrievalResult, *, title: str | None = None) -> Table:
    """The chunks of one search, with the formula of the final score and the min_score rule as caption."""
    return documents_table(
        result.documents, title=title or f"'{safe(result.query)}' in {safe(result.kb)} ({result.mode})",
        caption=f"{result.formula}; min_score {result.min_score:g} (inclusive)", kb_column=len(result.kbs) > 1,
    )


def documents_table(documents: list[Document], *, title: str, caption: str = "", cite: bool = False,
                    kb_column: bool | None = None) -> Table:
    """Rank (or [n] citation), kb (when several knowledge bases were searched; by default when the chunks come from
    several), source, chunk, dense %, sparse, colbert, rerank (only when a chunk was cross-encoder-reranked: sigmoid
    and logit), hybrid, final and matched terms."""
    table = Table(title=title, caption=caption or None, header_style="bold")
    reranked = any(Scores.from_metadata(doc.metadata).rerank is not None for doc in documents)
    if kb_column is None:
        kb_column = len({doc.metadata.get("kb") for doc in documents}) > 1
    columns = ["#" if cite else "rank", *(["kb"] if kb_column else []), "source", "chunk", "dense %", "sparse",
               "colbert", *(["rerank (logit)"] if reranked else []), "hybrid", "final", "matched terms"]
    for name in columns:
        table.add_column(name, justify="left" if name in {"kb", "source", "matched terms"} else "right",
                         overflow="fold")
    for doc in documents:
        cells = row(doc, cite=cite, rerank_column=reranked)
        table.add_row(*cells[:1], *([safe(doc.metadata.get("kb", ""))] if kb_column else []), *cells[1:])
    return table


def rerank_cell(scores: Scores) -> str:
    """The cross-encoder's sigmoid (what fusion uses) and its raw logit, e.g. ``0.940 (2.756)``; ``-`` if none."""
    if scores.rerank is None:
        return "-"
    return f"{scores.rerank:.3f} ({_num(scores.rerank_raw)})"


def row(doc: Document, *, cite: bool = False, rerank_column: bool = False) -> list[str]:
    meta = doc.metadata
    scores = Scores.from_metadata(meta)
    rank = f"[{meta['rank']}]" if cite else str(meta["rank"])
    return [
        rank, safe(location(meta)), str(Provenance.from_metadata(meta).chunk_index), f"{100 * scores.dense:.1f}",
        _num(scores.sparse), _num(scores.colbert), *([rerank_cell(scores)] if rerank_column else []),
        _num(scores.hybrid), _num(scores.final, 4), safe(terms(meta)),
    ]
