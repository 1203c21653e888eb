"""The sidebar's reranker choice (none / ColBERT / cross-encoder, and how many candidates) applied to the chat and the
Retrieval check page, the reranker's line in the status block, and the line that says what reranking cost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rag.config import Settings, with_overrides
from rag.encoder import Encoder
from rag.rerank import loaded_reranker
from rag.retrieval import HybridRetriever
from rag.store import MilvusStore
from tests.support.ollama_server import OllamaTestServer
from tests.support.rendered import visible_text
from tests.ui.conftest import KB
from tests.ui.test_app import QUESTION, assert_cards_match, cards, start

QUERY = "remote work days per week"


def reranked_search(settings: Settings, encoder: Encoder, query: str, **changes: Any) -> list[Any]:
    """The retriever's own result for ``query`` with ``changes`` to the retrieval settings."""
    with MilvusStore(settings.milvus) as store:
        retrieval = with_overrides(settings.retrieval, **changes)
        return HybridRetriever.from_store(encoder, store, KB, retrieval).search(query).documents


def reranker_lines(at: Any) -> list[str]:
    return [m.value for m in at.sidebar.markdown if "**Reranker**" in m.value]


def assert_reranked(shown: list[dict[str, Any]], docs: list[Any], reranked: int) -> None:
    """The first ``reranked`` cards show the cross-encoder's scores of the retriever's chunks, the others none."""
    assert all("rerank" in doc.metadata["scores"] for doc in docs[:reranked])
    for card, doc in zip(shown[:reranked], docs, strict=False):
        scores = doc.metadata["scores"]
        assert card["shown"]["rerank"] == f"{scores['rerank']:.4f}"
        assert card["shown"]["rerank_raw"] == f"{scores['rerank_raw']:.4f}"
    assert all("rerank" not in card["shown"] for card in shown[reranked:])


def test_cross_encoder_chosen_in_the_sidebar_reranks_the_chat_and_the_retrieval_check(
    demo_kb: Settings, use_settings: Callable[..., Settings], ollama_server: OllamaTestServer, ui_encoder: Encoder
) -> None:
    reranker = {**demo_kb.retrieval.reranker.model_dump(), "batch_size": 5}  # settings no other test loads
    settings = use_settings(demo_kb, llm={"base_url": ollama_server.url}, retrieval={"reranker": reranker})
    assert settings.retrieval.rerank == "none"
    ollama_server.behaviour.reply = "Three days per week [1]."
    at = start()
    assert not reranker_lines(at)  # no reranker chosen: no line for it
    at.sidebar.selectbox(key="opt_rerank").set_value("cross-encoder").run()
    at.sidebar.number_input(key="opt_rerank_candidates").set_value(2).run()
    [line] = reranker_lines(at)
    assert line.startswith("⚪") and "cpu · fp32 · not loaded" in line

    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception and not at.error
    docs = reranked_search(settings, ui_encoder, QUESTION, rerank="cross-encoder", rerank_candidates=2)
    shown = cards(at)
    assert_cards_match(shown, docs, settings)
    assert_reranked(shown, docs, 2)
    assert "final = hybrid = (1.0 x dense + 0.3 x sparse + 1.0 x rerank) / 2.3" in at.expander[0].code[0].value
    timing = [visible_text(c.value) for c in at.chat_message[1].caption
              if visible_text(c.value).startswith("cross-encoder: ")]
    assert len(timing) == 1 and "2 candidates reranked in " in timing[0], timing
    at.run()
    [line] = reranker_lines(at)
    assert line.startswith("🟢") and "cpu · fp32 · loaded" in line
    assert loaded_reranker(settings.retrieval.reranker) is not None

    at.switch_page("pages_/retrieval_check.py").run()
    at.text_input(key="rc_query").set_value(QUERY)
    at.number_input(key="rc_top_k").set_value(4)
    at.button(key="rc_search").click().run()
    assert not at.exception and not at.error
    docs = reranked_search(settings, ui_encoder, QUERY, rerank="cross-encoder", rerank_candidates=2, top_k=4)
    shown = cards(at)
    assert_cards_match(shown, docs, settings)
    assert_reranked(shown, docs, 2)
    assert any(visible_text(c.value).startswith("cross-encoder: 2 candidates reranked in ") for c in at.caption)
    table = at.dataframe[0].value
    assert list(table["rerank"][:2]) == pytest.approx([d.metadata["scores"]["rerank"] for d in docs[:2]])
    assert table["rerank"][2:].isna().all()  # outside the rerank set


def test_rerank_none_in_the_sidebar_loads_nothing_even_when_the_config_says_cross_encoder(
    demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder
) -> None:
    reranker = {**demo_kb.retrieval.reranker.model_dump(), "batch_size": 3, "quantize": "int8"}  # loaded nowhere else
    settings = use_settings(demo_kb, retrieval={"rerank": "cross-encoder", "reranker": reranker})
    at = start("pages_/retrieval_check.py")
    assert at.sidebar.selectbox(key="opt_rerank").value == "cross-encoder"  # the config's choice, at first
    [line] = reranker_lines(at)
    assert "cpu · int8 · not loaded" in line
    at.sidebar.selectbox(key="opt_rerank").set_value("none")
    at.text_input(key="rc_query").set_value(QUERY)
    at.button(key="rc_search").click().run()
    assert not at.exception and not at.error
    assert not reranker_lines(at)
    docs = reranked_search(settings, ui_encoder, QUERY, rerank="none")
    shown = cards(at)
    assert_cards_match(shown, docs, settings)
    assert all("rerank" not in card["shown"] for card in shown)
    assert not any("reranked in" in visible_text(c.value) for c in at.caption)
    assert "rerank" not in at.dataframe[0].value.columns
    assert loaded_reranker(settings.retrieval.reranker) is None
