"""The web app's upload takes images: the picture is OCR'd, the summary says so, and its card carries the OCR mark."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag.config import Settings
from tests.support.rendered import visible_text
from tests.support.scanned import SECOND_LINES, image_bytes, render_page
from tests.ui.test_app import card_text, cards, start


def test_an_uploaded_image_is_ocrd_and_its_card_is_marked(
    ui_settings: Callable[..., Settings], use_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    use_settings(ui_settings(tmp_path))
    at = start("pages_/knowledge_bases.py")
    at.text_input(key="kbm_target").set_value("scans_kb")
    png = image_bytes(render_page(SECOND_LINES, size=(1100, 160), top=30), "PNG")
    at.file_uploader(key="kbm_files").set_value([("sick-leave.png", png, "image/png")])
    at.run()
    at.button(key="kbm_ingest").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert dict(zip(at.table[0].value["outcome"], at.table[0].value["documents"], strict=True))["added"] == "1"
    assert any("sick-leave.png: image" in visible_text(c.value) for c in at.caption), [c.value for c in at.caption]

    at.switch_page("pages_/retrieval_check.py").run()
    at.text_input(key="rc_query").set_value("医院证明")
    at.button(key="rc_search").click().run()
    [card] = cards(at)
    assert 'data-ocr="true"' in card["html"] and "医院证明" in card_text(card)
