"""The Evaluation page in a real browser (Debian's Chromium through Playwright, as tests/ui/test_browser.py): marks
written as the cards write them, one click on Run, and the page draws its Plotly charts.

Saves test-output/screenshot-evaluation.png; with UPDATE_SCREENSHOT=1 it also copies it to
docs/screenshot-evaluation.png (for the README), so that a plain test run leaves the working tree clean.
"""

from __future__ import annotations

import pytest

from rag.config import Settings
from rag.encoder import Encoder
from rag.evaluation import append_judgment
from rag.retrieval import HybridRetriever
from rag.store import MilvusStore
from tests.ui.browser import SCROLL_TO_TOP, SHOTS, chromium_page, keep_screenshots, needs_chromium
from tests.ui.conftest import KB
from tests.ui.test_browser import app_url, browser_kb  # noqa: F401 - fixtures

QUESTIONS = ["How many days per week can I work remotely?", "Must remote work laptops use disk encryption?",
             "年假有多少天？", "Who approves fully remote work?"]


@pytest.fixture
def marks(browser_kb: Settings, ui_encoder: Encoder) -> list[str]:  # noqa: F811 - the imported fixture
    """Each question's top dense hit marked relevant, written before the app opens the embedded database."""
    with MilvusStore(browser_kb.milvus) as store:
        retriever = HybridRetriever.from_store(ui_encoder, store, KB, browser_kb.retrieval)
        hits = [retriever.search(q, top_k=3, mode="dense", min_score=0.0).documents for q in QUESTIONS]
    for query, found in zip(QUESTIONS, hits, strict=True):
        append_judgment(browser_kb.app.data_dir, kb=KB, query=query, chunk_id=found[-1].metadata["id"],
                        source=found[-1].metadata["source"], label="relevant")
    return [found[-1].metadata["id"] for found in hits]


@needs_chromium
def test_evaluation_page_draws_its_charts(marks: list[str], app_url: str) -> None:  # noqa: F811
    from playwright.sync_api import expect

    with chromium_page(1250) as (page, dialogs):
        page.goto(f"{app_url}/evaluation")
        expect(page.get_by_text(f"{len(QUESTIONS)} questions with a relevant mark")).to_be_visible(
            timeout=120_000)
        page.get_by_role("button", name="Run every mode").click()
        charts = page.get_by_test_id("stPlotlyChart")
        expect(charts).to_have_count(2, timeout=120_000)
        expect(charts.first.locator(".main-svg").first).to_be_visible(timeout=30_000)
        expect(charts.nth(1)).to_contain_text("hybrid+colbert")  # the rank chart names every mode ...
        expect(charts.nth(1)).to_contain_text("Q1")  # ... and each question
        expect(page.get_by_text("not significant (4 questions)").first).to_be_attached()
        page.wait_for_timeout(1000)  # the charts' transitions
        page.get_by_role("heading", name="Results").evaluate(SCROLL_TO_TOP)
        page.wait_for_timeout(300)
        shot = SHOTS / "screenshot-evaluation.png"
        page.screenshot(path=str(shot))
        assert dialogs == []
    keep_screenshots(shot)
