"""A long PDF uploaded on the Knowledge bases page: read with page progress (ingest.readers.pdf) and ingested."""

from __future__ import annotations

from collections.abc import Callable

from rag.config import Settings
from rag.store import MilvusStore
from tests.ingest.conftest import make_pdf
from tests.ui.test_app import start


def test_a_long_pdf_upload_reports_its_reading_and_is_ingested(
    demo_kb: Settings, use_settings: Callable[..., Settings]
) -> None:
    settings = use_settings(demo_kb)
    at = start("pages_/knowledge_bases.py")
    at.text_input(key="kbm_target").set_value("handbook_kb")
    pages = [f"Page {n}: the travel policy, section {n}." for n in range(1, 81)]
    at.file_uploader(key="kbm_files").set_value([("handbook.pdf", make_pdf(pages), "application/pdf")])
    at.run()
    at.button(key="kbm_ingest").click().run()
    assert not at.exception and not at.error  # the progress bar heard each page read (over 50 pages)
    with MilvusStore(settings.milvus) as store:
        stored = store.open("handbook_kb")
        assert set(stored.documents()) == {"handbook.pdf"}
        text = " ".join(r["text"] for r in stored.chunks("handbook.pdf"))
    assert "section 1." in text and "section 80." in text
