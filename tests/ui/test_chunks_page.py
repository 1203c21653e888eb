"""The chunk browser page through AppTest, on the demo knowledge base: it shows what rag.workbench.ChunkBrowser
gives (same ids, order, text, token counts), searches by words, pages, and sends a chunk to "explain a miss"."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from ingest.pipeline import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.retrieval import HybridRetriever
from rag.store import MilvusStore
from rag.workbench import ChunkBrowser, ChunkPage
from rag.workbench.explain import explain
from tests.ui.conftest import APP, KB
from tests.ui.test_retrieval_check_explain import QUERY, assert_shows

CHUNKS_PER_PAGE = 10  # ui/pages_/chunks.py's page sizes (importing a page module would run the page)
DOCUMENTS_PER_PAGE = 20

_CHUNK = re.compile(r'<div class="rs-chunk" data-chunk-id="([^"]*)" data-chunk-index="(\d+)"[^>]*>'
                    r'<div[^>]*>([^<]*)</div><div class="rs-text"[^>]*>(.*?)</div></div>$', re.DOTALL)


@pytest.fixture
def browser(demo_kb: Settings, ui_encoder: Encoder) -> Iterator[ChunkBrowser]:
    """rag.workbench's browser on the same knowledge base, to compare the page with."""
    with MilvusStore(demo_kb.milvus) as store:
        yield ChunkBrowser(store.open(KB), count_tokens=ui_encoder.count_tokens)


def start() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("pages_/chunks.py").run()
    assert not at.exception, at.exception
    return at


def shown_chunks(at: AppTest) -> list[dict[str, Any]]:
    """The chunks on the page, in page order: id, chunk index, header line and text (unescaped)."""
    found = []
    for element in at.get("html"):
        match = _CHUNK.match(element.value)
        if match:
            chunk_id, index, head, text = match.groups()
            found.append({"id": html.unescape(chunk_id), "index": int(index), "head": html.unescape(head),
                          "text": html.unescape(text)})
    return found


def assert_page_shows(at: AppTest, page: ChunkPage) -> None:
    """The page shows exactly ``page``'s chunks, in order, with full text, chunk number, tokens, and the ids as code."""
    shown = shown_chunks(at)
    assert [c["id"] for c in shown] == [c.id for c in page.chunks] and shown
    for item, chunk in zip(shown, page.chunks, strict=True):
        origin = chunk.provenance
        assert item["text"] == chunk.text and item["index"] == origin.chunk_index
        assert item["head"].startswith(f"{origin.source} · chunk {origin.chunk_index + 1} · ")
        assert item["head"].endswith(f"{chunk.tokens} tokens") and chunk.tokens
        if origin.has_page:
            assert f" · p. {origin.page} · " in item["head"]
    codes = [c.value for c in at.code]
    assert [c.id for c in page.chunks] == [code for code in codes if code in {c.id for c in page.chunks}]


def test_documents_and_a_documents_chunks_in_order(
    demo_kb: Settings, use_settings: Callable[..., Settings], browser: ChunkBrowser
) -> None:
    use_settings(demo_kb)
    at = start()
    documents = browser.documents(limit=21)
    assert len(documents) <= 20  # the demo fits on one page of documents: no pager
    sources = list(dict.fromkeys(d.source for d in documents))
    select = at.selectbox(key="cb_source")
    assert select.options == [f"{s} · {sum(d.chunks for d in documents if d.source == s)} chunks" for s in sources]
    assert select.value == sources[0]
    assert_page_shows(at, browser.chunks(source=sources[0], limit=CHUNKS_PER_PAGE))
    for source in sources[1:3]:
        select.set_value(source).run()
        assert not at.exception
        assert_page_shows(at, browser.chunks(source=source, limit=CHUNKS_PER_PAGE))


def test_paging_through_a_documents_chunks(
    demo_kb: Settings, use_settings: Callable[..., Settings], browser: ChunkBrowser
) -> None:
    use_settings(demo_kb)
    documents = browser.documents(limit=20)
    longest = max(documents, key=lambda d: d.chunks)
    assert longest.chunks > CHUNKS_PER_PAGE, "the demo knowledge base needs a document of more than one page"
    at = start()
    at.selectbox(key="cb_source").set_value(longest.source).run()
    assert at.button(key="cb_offset_prev").disabled and not at.button(key="cb_offset_next").disabled
    at.button(key="cb_offset_next").click().run()
    second = browser.chunks(source=longest.source, limit=CHUNKS_PER_PAGE, offset=CHUNKS_PER_PAGE)
    assert_page_shows(at, second)
    assert shown_chunks(at)[0]["index"] == CHUNKS_PER_PAGE
    assert any(c.value == f"Chunks {CHUNKS_PER_PAGE + 1}-{CHUNKS_PER_PAGE + len(second.chunks)}" for c in at.caption)
    at.button(key="cb_offset_prev").click().run()
    assert_page_shows(at, browser.chunks(source=longest.source, limit=CHUNKS_PER_PAGE))


def test_search_by_words_in_text_or_source(
    demo_kb: Settings, use_settings: Callable[..., Settings], browser: ChunkBrowser
) -> None:
    use_settings(demo_kb)
    at = start()
    at.text_input(key="cb_contains").set_value("sync conflict").run()
    expected = browser.chunks(contains="sync conflict", limit=CHUNKS_PER_PAGE)
    assert_page_shows(at, expected)
    assert all("sync" in c.text.lower() + c.provenance.source.lower() for c in expected.chunks)
    assert not [s for s in at.selectbox if s.key == "cb_source"]  # words, not a document
    at.text_input(key="cb_contains").set_value("zzzz-nowhere").run()
    assert not shown_chunks(at) and [i.value for i in at.info] == ["No chunk matches."]


def test_explain_against_a_query_opens_the_retrieval_check(
    demo_kb: Settings, use_settings: Callable[..., Settings], browser: ChunkBrowser, ui_encoder: Encoder
) -> None:
    settings = use_settings(demo_kb)
    at = start()
    at.text_input(key="cb_contains").set_value("sync").run()
    chunk = browser.chunks(contains="sync", limit=CHUNKS_PER_PAGE).chunks[-1]
    at.text_input(key="cb_query").set_value(QUERY)
    at.button(key=f"cb_explain_{chunk.id}").click().run()
    assert not at.exception and not at.error
    assert at.text_input(key="rc_query").value == QUERY and at.text_input(key="rcx_target").value == chunk.id
    with MilvusStore(settings.milvus) as store:
        retriever = HybridRetriever.from_store(ui_encoder, store, KB, settings.retrieval)
        assert_shows(at, explain(retriever, QUERY, chunk.id))


def test_the_page_in_chinese(demo_kb: Settings, use_settings: Callable[..., Settings]) -> None:
    use_settings(demo_kb)
    at = start()
    at.sidebar.radio[0].set_value("zh").run()
    assert not at.exception and at.title[0].value == "片段浏览器"
    assert {b.label for b in at.button if b.key.startswith("cb_explain_")} == {"针对该查询解释"}
    assert shown_chunks(at)[0]["head"].split(" · ")[1].startswith("片段 ")


def test_documents_are_paged(
    ui_settings: Callable[..., Settings], ui_encoder: Encoder, use_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(DOCUMENTS_PER_PAGE + 3):
        (docs / f"note-{n:02d}.txt").write_text(f"Note number {n} about remote work.\n", encoding="utf-8")
    settings = use_settings(ui_settings(tmp_path))
    with MilvusStore(settings.milvus) as store:
        assert not IngestPipeline(settings, ui_encoder, store).run([docs], kb=KB).failed
        browser = ChunkBrowser(store.open(KB))
        first = [d.source for d in browser.documents(limit=DOCUMENTS_PER_PAGE)]
        second = [d.source for d in browser.documents(limit=DOCUMENTS_PER_PAGE, offset=DOCUMENTS_PER_PAGE)]
    assert len(first) == DOCUMENTS_PER_PAGE and len(second) == 3
    at = start()
    assert [o.split(" · ")[0] for o in at.selectbox(key="cb_source").options] == first
    assert at.button(key="cb_doc_offset_prev").disabled
    at.button(key="cb_doc_offset_next").click().run()
    assert not at.exception
    assert [o.split(" · ")[0] for o in at.selectbox(key="cb_source").options] == second
    assert at.button(key="cb_doc_offset_next").disabled
    assert at.selectbox(key="cb_source").value == second[0]
    number = int(second[0].removeprefix("note-").removesuffix(".txt"))
    assert [c["text"] for c in shown_chunks(at)] == [f"Note number {number} about remote work."]
