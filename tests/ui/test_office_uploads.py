"""Excel and PowerPoint files uploaded on the Knowledge bases page: ingested, and their cards say "slide N"."""

from __future__ import annotations

from collections.abc import Callable

from rag.config import Settings
from rag.store import MilvusStore
from tests.ingest.conftest import make_pptx, make_xlsx
from tests.ui.test_app import cards, start

DECK = [
    {"title": "Quarterly results", "bullets": ["Revenue grew twelve percent", "Churn fell"]},
    {"title": "Regional sales", "table": [["Region", "Sales"], ["Europe", "10"], ["Asia", "20"]]},
]


def test_xlsx_and_pptx_uploads_are_ingested_and_cards_show_slide_numbers(
    demo_kb: Settings, use_settings: Callable[..., Settings]
) -> None:
    settings = use_settings(demo_kb)
    at = start("pages_/knowledge_bases.py")
    assert {".xlsx", ".pptx"} <= set(at.file_uploader(key="kbm_files").proto.type)  # the uploader accepts them
    at.text_input(key="kbm_target").set_value("office_kb")
    book = make_xlsx({"Staff": [["Name", "Office"], ["Alice", "Berlin"], ["Bob", "Shanghai"]]})
    at.file_uploader(key="kbm_files").set_value([
        ("book.xlsx", book, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("deck.pptx", make_pptx(DECK), "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ])
    at.run()
    at.button(key="kbm_ingest").click().run()
    assert not at.exception and not at.error
    with MilvusStore(settings.milvus) as store:
        assert set(store.open("office_kb").documents()) == {"book.xlsx#Staff", "deck.pptx"}

    at.selectbox(key="kbm_name").set_value("office_kb").run()
    at.button(key="kbm_activate").click().run()
    at.switch_page("pages_/retrieval_check.py").run()
    at.text_input(key="rc_query").set_value("Regional sales Europe Asia")
    at.button(key="rc_search").click().run()
    shown = [c["html"] for c in cards(at)]
    assert any("deck.pptx · slide 2 · Regional sales" in card for card in shown), shown
    assert not any("deck.pptx · p. " in card for card in shown)
