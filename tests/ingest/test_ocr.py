"""OCR with the real engine (RapidOCR on the CPU): scanned PDFs, mixed PDFs, images, and the reasons given when
OCR cannot or may not run. Each OCR'd page costs seconds, so only a few pages are OCR'd here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from ingest.readers import OcrOptions, ReadError, read_file
from ingest.readers.image import NO_OCR
from ingest.readers.ocr import describe_ocr, usable_text
from ingest.readers.pdf import NO_TEXT
from rag.config import Settings
from rag.store import MilvusStore
from tests.conftest import run_cli
from tests.ingest.conftest import make_pdf
from tests.support import scanned
from tests.support.scanned import LINES, SECOND_LINES, character_error_rate, render_page

MAX_CER = 0.05


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def reason(path: Path, ocr: OcrOptions | None = None) -> str:
    with pytest.raises(ReadError) as info:
        read_file(path, ocr=ocr)
    return str(info.value)


def test_scanned_pdf_is_ocrd_with_few_character_errors_and_reports_its_pages(tmp_path: Path) -> None:
    path = write(tmp_path, "scan.pdf", scanned.scanned_pdf([render_page(LINES)]))
    pages: list[tuple[int, int]] = []
    [doc] = read_file(path, ocr=OcrOptions(), on_ocr_page=lambda done, total: pages.append((done, total)))
    [section] = doc.sections
    assert section.metadata == {"page": 1, "ocr": True} and doc.metadata == {"file_type": "pdf", "pages": 1}
    cer = character_error_rate(LINES, section.text)
    assert cer < MAX_CER, f"character error rate {cer:.3f}:\n{section.text}"
    assert len(section.text.splitlines()) == len(LINES)  # one line per rendered line, in reading order
    assert pages == [(0, 1), (1, 1)]
    assert doc.content == f"scan\n\n{section.text}"
    # Not OCR'd: without OCR options, with ocr: never, or beyond the page limit; each with its one-line reason.
    assert reason(path) == reason(path, OcrOptions("never")) == NO_TEXT
    assert reason(path, OcrOptions(max_pages=0)) == (
        "needs OCR on 1 page, more than ingest.ocr_max_pages (0); raise it to ingest this file")


def test_mixed_pdf_reads_the_text_page_and_ocrs_the_scanned_page(tmp_path: Path) -> None:
    # Page 2 is a scan under an invisible text layer of unmapped glyphs: that layer is garbage, so it is OCR'd.
    data = scanned.mixed_pdf("Page one has a real text layer about vector clocks.", render_page(SECOND_LINES),
                     hidden_garbage="(cid:3)(cid:17)(cid:42)(cid:5)(cid:9)")
    [doc] = read_file(write(tmp_path, "mixed.pdf", data), ocr=OcrOptions())
    first, second = doc.sections
    assert (first.metadata, first.text) == ({"page": 1}, "Page one has a real text layer about vector clocks.")
    assert second.metadata == {"page": 2, "ocr": True}
    assert character_error_rate(SECOND_LINES, second.text) < MAX_CER, second.text
    [never] = read_file(tmp_path / "mixed.pdf", ocr=OcrOptions("never"))  # text layers as they are
    assert [(s.metadata, s.text) for s in never.sections] == [
        ({"page": 1}, first.text), ({"page": 2}, "(cid:3)(cid:17)(cid:42)(cid:5)(cid:9)")]


def test_multipage_tiff_is_ocrd_page_by_page(tmp_path: Path) -> None:
    frames = [render_page([line], size=(1000, 100), top=30) for line in SECOND_LINES]
    out = tmp_path / "fax.tiff"
    frames[0].save(out, format="TIFF", save_all=True, append_images=frames[1:])
    [doc] = read_file(out, ocr=OcrOptions())
    assert doc.metadata == {"file_type": "tiff", "pages": 2} and doc.title == "fax"
    assert [s.metadata for s in doc.sections] == [{"page": 1, "ocr": True}, {"page": 2, "ocr": True}]
    for section, line in zip(doc.sections, SECOND_LINES, strict=True):
        assert character_error_rate([line], section.text) < MAX_CER, section.text


def test_images_that_cannot_be_read_get_a_one_line_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    png = scanned.image_bytes(render_page(["x"], size=(200, 100)), "PNG")
    auto = OcrOptions()
    assert reason(write(tmp_path, "note.jpg", b"just some text, not a JPEG"), auto) == (
        "corrupt image: not a jpg image (no image format recognised)")
    assert reason(write(tmp_path, "cut.png", png[: len(png) // 2]), auto).startswith("corrupt image: ")
    assert reason(write(tmp_path, "ok.png", png)) == reason(tmp_path / "ok.png", OcrOptions("never")) == NO_OCR
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 20,000 pixels: a decompression bomb by this limit
    assert reason(tmp_path / "ok.png", auto).startswith("image too large to OCR (")
    for text in (reason(tmp_path / "note.jpg", auto), reason(tmp_path / "cut.png", auto)):
        assert "\n" not in text


def test_always_ocrs_pages_that_have_a_text_layer(tmp_path: Path) -> None:
    path = write(tmp_path, "plain.pdf", make_pdf(["Annual leave is fifteen days per year."]))
    [doc] = read_file(path, ocr=OcrOptions("always"))
    [section] = doc.sections
    assert section.metadata == {"page": 1, "ocr": True}
    assert character_error_rate(["Annual leave is fifteen days per year."], section.text) < MAX_CER, section.text


@pytest.mark.parametrize(
    ("text", "usable"),
    [
        ("Annual leave is fifteen days.", True),
        ("员工每年享有十五天带薪年假。", True),
        ("3", True),
        ("", False),
        ("  \n ", False),
        ("— · —", False),  # no letter or digit
        ("(cid:3)(cid:17)(cid:42)(cid:5)", False),
        ("\ue000\ue001\ue002 a", False),  # private-use glyph codes
        ("\ufffd\ufffd\ufffd\ufffdab", False),
        ("Résumé: naïve café, 价格 ¥30 (cid:7)", True),  # one unmapped glyph among readable text
    ],
)
def test_usable_text_layer(text: str, usable: bool) -> None:
    assert usable_text(text) is usable


def test_describe_ocr() -> None:
    assert describe_ocr([{"page": 1}, {"page": 2}]) == ""
    assert describe_ocr([{"page": 2, "ocr": True}, {"page": 2, "ocr": True}]) == "page 2"
    pages = [{"page": n, "ocr": True} for n in (5, 2, 3, 4, 9)]
    assert describe_ocr([{"page": 1}, *pages]) == "pages 2-5, 9"
    assert describe_ocr([{"ocr": True}]) == "image"


def test_rag_ingest_ocrs_scans_and_images_and_rag_search_finds_them(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    write(folder, "mixed.pdf", scanned.mixed_pdf("Page one has a real text layer about vector clocks.",
                                                 render_page(SECOND_LINES)))
    notice = render_page(LINES[2:], size=(1240, 200), top=30)
    notice = Image.merge("LA", (Image.new("L", notice.size, 0), notice.point(lambda v: 255 - v)))  # black on clear
    write(folder, "notice.png", scanned.image_bytes(notice, "PNG"))
    write(folder, "broken.jpg", b"not a JPEG at all")

    result = run_cli([str(folder)], settings)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out  # broken.jpg failed; the others are in
    assert "broken.jpg: corrupt image: not a jpg image (no image format recognised)" in out
    assert re.search(r"│ mixed\.pdf\s+│ page 2\s+│", out) and re.search(r"│ notice\.png\s+│ image\s+│", out), out
    assert "ocr         mixed.pdf: page 1/1" in out  # progress while OCR runs (one line per page in logs)
    with MilvusStore(settings.milvus) as store:
        base = store.open(settings.kb.name)
        assert set(base.documents()) == {"mixed.pdf", "notice.png"}
        pages = {(r["metadata"]["page"], r["metadata"].get("ocr")) for r in base.chunks("mixed.pdf")}
        assert pages == {(1, None), (2, True)}
        [image] = base.chunks("notice.png")
        assert image["metadata"]["ocr"] is True and "page" not in image["metadata"]
        assert character_error_rate(LINES[2:], image["text"]) < MAX_CER, image["text"]

    found = run_cli(["search", "医院证明，逾期作废", "--mode", "sparse", "--json"], settings, program="rag")
    assert found.returncode == 0, found.stderr
    top = json.loads(found.stdout)["documents"][0]
    assert (top["source"], top["page"], top["metadata"]["ocr"]) == ("mixed.pdf", 2, True)
    assert "医院证明，逾期作废" in top["text"]
    table = run_cli(["search", "医院证明，逾期作废", "--mode", "sparse", "--top-k", "1"], settings, program="rag")
    assert "mixed.pdf p.2 (OCR)" in table.stdout, table.stdout

    # ingest.ocr: never keeps today's reason for a scan; a wrong value is a one-line error, no traceback.
    never = run_cli([str(folder / "mixed.pdf"), "--kb", "never_kb", "--ocr", "never"], settings)
    assert never.returncode == 0 and "OCR'd" not in never.stdout, never.stdout  # page 1 only, nothing OCR'd
    write(tmp_path, "scan.pdf", scanned.scanned_pdf([render_page(["x"], size=(300, 200))]))
    never = run_cli([str(tmp_path / "scan.pdf"), "--kb", "never_kb", "--ocr", "never"], settings)
    assert never.returncode == 1 and f"scan.pdf: {NO_TEXT}" in never.stdout, never.stdout
    wrong = run_cli([str(tmp_path / "scan.pdf"), "--ocr", "maybe"], settings)
    assert wrong.returncode != 0 and "ingest.ocr" in wrong.stdout + wrong.stderr, wrong.stdout + wrong.stderr
    assert "Traceback" not in wrong.stdout + wrong.stderr
