"""The recall workbench in a real browser (the app served by `streamlit run`, Debian's Chromium through Playwright,
as in test_browser.py): open the chunk browser, pick a chunk, explain it against a query, see its ranks.

Saves test-output/screenshot-chunks.png and test-output/screenshot-explain.png; with UPDATE_SCREENSHOT=1 it also
copies them to docs/ (the README's screenshots), so that a plain test run leaves the working tree clean.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.pipeline import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.retrieval import HybridRetriever
from rag.store import MilvusStore
from rag.workbench import ChunkBrowser
from rag.workbench.explain import Explanation, explain
from tests.conftest import EXAMPLES
from tests.support.ollama_server import OllamaTestServer
from tests.ui.browser import SCROLL_TO_TOP, SHOTS, chromium_page, keep_screenshots, needs_chromium
from tests.ui.conftest import KB
from tests.ui.test_browser import SCRIPT, app_url  # noqa: F401 (app_url: a fixture)

QUERY = "How does the sync engine resolve conflicts?"
WORDS = "conflict"


@pytest.fixture
def browser_kb(ui_settings: Callable[..., Settings], ui_encoder: Encoder, tmp_path: Path) -> Settings:
    """The demo knowledge base plus a note holding a <script> tag, top_k 3, in an embedded milvus-lite that is closed
    again so that the app's process can open it (this module's stand-in for test_browser.py's fixture)."""
    docs = tmp_path / "docs"
    shutil.copytree(EXAMPLES, docs)
    (docs / "sync-security-note.txt").write_text(
        f"Sync security note: a chunk may contain HTML such as {SCRIPT}; the chunk browser shows it as text.\n",
        encoding="utf-8")
    settings = ui_settings(tmp_path, retrieval={"top_k": 3})
    with MilvusStore(settings.milvus) as store:
        report = IngestPipeline(settings, ui_encoder, store).run([docs], kb=KB)
    assert not report.failed
    return settings


@pytest.fixture
def missed(browser_kb: Settings, ui_encoder: Encoder) -> Explanation:
    """A chunk on the first page of the word search that the query misses, explained (before the app opens the
    knowledge base); preferably one ranked below top_k after fusion, whose fixes the page can apply."""
    with MilvusStore(browser_kb.milvus) as store:
        chunks = ChunkBrowser(store.open(KB)).chunks(contains=WORDS, limit=10).chunks
        retriever = HybridRetriever.from_store(ui_encoder, store, KB, browser_kb.retrieval)
        misses = [r for r in (explain(retriever, QUERY, c.id) for c in chunks) if r.lost_at != "retrieved"]
    assert misses, f"every chunk containing {WORDS!r} is retrieved for the query"
    return min(misses, key=lambda r: (r.lost_at != "top_k", r.source == "README.md"))


@needs_chromium
def test_browse_pick_a_chunk_and_explain_it_in_a_real_browser(
    missed: Explanation, app_url: str, ollama_server: OllamaTestServer  # noqa: F811 (the imported fixture)
) -> None:
    from playwright.sync_api import expect

    shots = {name: SHOTS / f"screenshot-{name}.png" for name in ("chunks", "explain")}
    with chromium_page(1300) as (page, dialogs):
        page.goto(f"{app_url}/chunks")
        words = page.get_by_label("Search chunks by words in their text or file name")
        words.wait_for(timeout=120_000)
        words.fill("chunk browser shows")  # the note: its <script> tag is shown as text, never run
        words.press("Enter")
        script_chunk = page.locator(".rs-chunk").filter(has_text=SCRIPT)
        expect(script_chunk).to_have_count(1, timeout=60_000)
        expect(page.locator(".rs-chunk")).to_have_count(1, timeout=60_000)  # the rerun replaced the listing
        assert page.locator(".rs-chunk script").count() == 0
        words.fill(WORDS)
        words.press("Enter")
        query = page.get_by_label("Query to explain a chunk against")
        query.fill(QUERY)
        query.press("Enter")
        card = page.locator(f'.rs-chunk[data-chunk-id="{missed.chunk_id}"]')
        expect(card).to_be_visible(timeout=60_000)
        expect(card.locator(".rs-text")).to_have_text(missed.text)
        page.get_by_role("heading", name="Chunk browser").click()  # out of the query box
        page.locator(".rs-chunk").first.evaluate(SCROLL_TO_TOP)
        expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=30_000)
        page.wait_for_timeout(300)
        page.screenshot(path=str(shots["chunks"]))

        page.locator(f".st-key-cb_explain_{missed.chunk_id} button").click()
        verdict = page.get_by_test_id("stAlert").filter(has_text=missed.reason.split(".")[0])
        expect(verdict.first).to_be_visible(timeout=60_000)
        expect(page.get_by_label("Chunk id, or the file name of a document")).to_have_value(missed.chunk_id)
        for name, rank in (("dense", missed.dense), ("sparse", missed.sparse)):
            row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name, exact=True))
            expect(row).to_contain_text(rank.describe())
        page.get_by_text("Explain a miss", exact=True).evaluate("e => e.scrollIntoView({block: 'start'})")
        expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=30_000)
        page.wait_for_timeout(300)
        page.screenshot(path=str(shots["explain"]))
        assert dialogs == []
    keep_screenshots(*shots.values())
