"""Score card HTML (ui.markup): the mark on chunks whose text was read by OCR."""

from __future__ import annotations

from typing import Any

from rag.config import LevelSettings
from ui.markup import card_html

LABELS = {"chunk": "chunk {n}", "page": "p. {n}", "cited": "cited", "matched_terms": "terms", "ocr": "OCR 识别"}


def _doc(**stored: Any) -> dict[str, Any]:
    return {"id": "c1", "text": "病假须提交医院证明。", "source": "scan.pdf", "doc_id": "scan.pdf", "chunk_index": 0,
            "page": 2, "rank": 1, "scores": {"dense": 0.7, "sparse": 0.1, "final": 0.7}, "matched_terms": [],
            "metadata": stored}


def test_ocr_chunks_carry_a_mark_and_others_do_not() -> None:
    marked = card_html(_doc(page=2, ocr=True), LevelSettings(), LABELS, 60)
    plain = card_html(_doc(page=2), LevelSettings(), LABELS, 60)
    assert 'data-ocr="true"' in marked and ">OCR 识别</span>" in marked
    assert "data-ocr" not in plain and "OCR" not in plain
