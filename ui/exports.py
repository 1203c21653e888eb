"""The retrieval of a query as CSV and JSON downloads: query, chunks and all their scores."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.documents import Document

from rag.retrieval import Provenance, ScoreFusion, Scores
from rag.retrieval.fusion import DEFAULT_RRF_K

# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SCORE_COLUMNS = ("dense", "sparse", "colbert", "hybrid", "rrf", "final", "dense_rank", "sparse_rank", "colbert_rank")
# The cross-encoder's sigmoid, logit and order: columns of an export where some chunk was reranked by it.
RERANK_COLUMNS = ("rerank", "rerank_raw", "rerank_rank")


def doc_dict(doc: Document) -> dict[str, Any]:
    """A retrieved Document as a plain dict: ``text`` plus its metadata."""
    return {"text": doc.page_content, **doc.metadata}


def rows(query: str, docs: Sequence[Mapping[str, Any]], rrf_k: int = DEFAULT_RRF_K) -> list[dict[str, Any]]:
    """One flat row per chunk, for CSV and tables; ``formula`` is the chunk's final score with its numbers.

    With cross-encoder reranking every row has the :data:`RERANK_COLUMNS` (empty outside the rerank set).
    """
    out = []
    reranked = any(Scores.from_metadata(doc).rerank is not None for doc in docs)
    for doc in docs:
        scores, origin = Scores.from_metadata(doc), Provenance.from_metadata(doc)
        flat = scores.to_metadata()
        rerank = {name: flat.get(name) for name in RERANK_COLUMNS} if reranked else {}
        out.append({
            "query": query, "kb": doc.get("kb", ""), "rank": doc.get("rank"), "chunk_id": doc.get("id"),
            "source": origin.source, "page": origin.page, "heading": origin.heading, "chunk_index": origin.chunk_index,
            **{name: flat[name] for name in SCORE_COLUMNS}, **rerank, "mode": scores.mode, "fusion": scores.fusion,
            "formula": ScoreFusion.of(scores, rrf_k).worked(scores) if scores.mode else "",
            "matched_terms": " ".join(str(m["term"]) for m in doc.get("matched_terms") or []),
            "text": doc.get("text", ""),
        })
    return out


def neutralise_formula(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, with a leading ``'`` (OWASP); numbers unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(query: str, docs: Sequence[Mapping[str, Any]], rrf_k: int = DEFAULT_RRF_K) -> str:
    """The retrieval as CSV, one row per chunk; text cells that would run as formulas are neutralised."""
    table = [{name: neutralise_formula(value) for name, value in row.items()} for row in rows(query, docs, rrf_k)]
    buffer = io.StringIO()
    columns = list(table[0]) if table else ["query"]
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(table)
    return buffer.getvalue()


def to_json(query: str, docs: Sequence[Mapping[str, Any]], **extra: Any) -> str:
    return json.dumps({"query": query, **extra, "documents": list(docs)}, ensure_ascii=False, indent=2, default=str)
