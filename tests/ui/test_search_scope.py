"""Several knowledge bases and filters on the chat and Retrieval check pages (AppTest): choosing a second knowledge
base shows cards from both, each naming its knowledge base, in the merged retriever's order; a filter narrows them."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ingest.pipeline import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.retrieval import MultiKBRetriever
from rag.store import MilvusStore
from tests.conftest import EXAMPLES
from tests.support.ollama_server import OllamaTestServer
from tests.support.other_model import ingest_with_another_model
from tests.ui.conftest import APP, KB

SECOND = "ui_second"
QUERY = "remote work days per week"
_CARD = re.compile(r'data-chunk-id="([^"]*)"')
_KB = re.compile(r'data-kb="([^"]*)"')


@pytest.fixture(scope="module")
def two_kbs(demo_kb: Settings, ui_encoder: Encoder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The demo knowledge base and ``ui_second``: two of its files under policies/ and faq/."""
    root = tmp_path_factory.mktemp("second")
    (root / "policies").mkdir()
    (root / "faq").mkdir()
    shutil.copy(EXAMPLES / "remote-work-policy.html", root / "policies")
    shutil.copy(EXAMPLES / "product-faq.md", root / "faq")
    with MilvusStore(demo_kb.milvus) as store:
        assert not IngestPipeline(demo_kb, ui_encoder, store).run([root], kb=SECOND).failed
        yield demo_kb


def shown(at: AppTest) -> list[tuple[str, str]]:
    """(kb, chunk id) of each score card, in page order."""
    out = []
    for element in at.get("html"):
        if 'class="rs-card"' in element.value:
            kb = _KB.search(element.value)
            out.append((kb.group(1) if kb else "", _CARD.search(element.value).group(1)))
    return out


def merged(settings: Settings, encoder: Encoder, query: str, top_k: int, **filters: object) -> list[tuple[str, str]]:
    with MilvusStore(settings.milvus) as store:
        result = MultiKBRetriever.from_store(encoder, store, [KB, SECOND], settings.retrieval).search(
            query, top_k=top_k, filters=filters or None)
    return [(d.metadata["kb"], d.metadata["id"]) for d in result.documents]


def test_retrieval_check_searches_two_knowledge_bases_and_filters_them(
    two_kbs: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder
) -> None:
    settings = use_settings(two_kbs)
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("pages_/retrieval_check.py").run()
    assert at.multiselect(key="rc_scope_kbs").options == [SECOND]  # the other knowledge base of the same model
    at.text_input(key="rc_query").set_value(QUERY)
    at.number_input(key="rc_top_k").set_value(8)
    at.multiselect(key="rc_scope_kbs").set_value([SECOND])
    at.button(key="rc_search").click().run()
    assert not at.exception and not at.error
    cards = shown(at)
    assert cards == merged(settings, ui_encoder, QUERY, 8) and {kb for kb, _ in cards} == {KB, SECOND}

    at.multiselect(key="rc_scope_types").set_value(["html"])
    at.button(key="rc_search").click().run()
    narrowed = shown(at)
    assert narrowed == merged(settings, ui_encoder, QUERY, 8, file_types=["html"]) and narrowed != cards
    sources = set(at.dataframe[0].value["source"])
    assert sources == {"remote-work-policy.html", "policies/remote-work-policy.html"}

    at.text_input(key="rc_scope_folder").set_value("faq")
    at.multiselect(key="rc_scope_types").set_value([])
    at.button(key="rc_search").click().run()
    assert {kb for kb, _ in shown(at)} == {SECOND} and set(at.dataframe[0].value["source"]) == {"faq/product-faq.md"}

    at.text_input(key="rc_scope_pages").set_value("three")
    at.button(key="rc_search").click().run()
    assert not at.exception and len(at.error) == 1 and "is not a page range" in at.error[0].value


def test_chat_answers_from_two_knowledge_bases_with_a_filter(
    two_kbs: Settings, use_settings: Callable[..., Settings], ollama_server: OllamaTestServer, ui_encoder: Encoder
) -> None:
    settings = use_settings(two_kbs, llm={"base_url": ollama_server.url})
    ollama_server.behaviour.reply = "Up to three days per week [1]."
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.multiselect(key="chat_scope_kbs").set_value([SECOND]).run()
    at.chat_input[0].set_value(QUERY).run()
    assert not at.exception and not at.error
    cards = shown(at)
    assert cards == merged(settings, ui_encoder, QUERY, settings.retrieval.top_k)
    assert at.session_state["chat_turns"][0]["kb"] == f"{KB}+{SECOND}"

    at.text_area(key="chat_scope_meta").set_value("zh=向量时钟").run()
    at.chat_input[0].set_value("vector clock").run()
    assert not at.exception
    turn = at.session_state["chat_turns"][1]
    assert [d["doc_id"] for d in turn["documents"]] == ["glossary.csv#G04"] and turn["documents"][0]["kb"] == KB
    assert "向量时钟" in str(ollama_server.chat_requests()[-1])  # the filtered chunk is the LLM's context


def test_scope_offers_only_knowledge_bases_of_the_same_model(
    two_kbs: Settings, use_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with MilvusStore(two_kbs.milvus) as store:
        ingest_with_another_model(store, two_kbs, "ui_other_model", tmp_path)
    use_settings(two_kbs)
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("pages_/retrieval_check.py").run()
    assert at.multiselect(key="rc_scope_kbs").options == [SECOND]
    with MilvusStore(two_kbs.milvus) as store:
        store.drop("ui_other_model")
