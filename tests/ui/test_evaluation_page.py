"""The Evaluation page through AppTest on the demo knowledge base, with marks written as the cards write them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from rag.config import Settings
from rag.encoder import Encoder
from rag.evaluation import append_judgment, evaluate_judgments, evaluate_questions, judgments_path, load_judgments
from rag.evaluation.marks import current_marks, export_marks
from rag.evaluation.report import metric_label
from rag.retrieval import HybridRetriever
from rag.store import MilvusStore
from rag.workbench.chunks import ChunkBrowser
from tests.support.rendered import visible_text
from tests.ui.conftest import APP, KB

HOSTILE = "年假有多少天？<a href='//x.test'>x</a> ![i](//x.test/i.png)"  # text of a mark is data
QUESTIONS = ["How many days per week can I work remotely?", "How does the sync engine resolve conflicts?", HOSTILE]
KS = [1, 3, 10]  # the page's Recall@1, @top-k (3 in these settings) and @10


def write_marks(settings: Settings, encoder: Encoder) -> list[str]:
    """Marks on the demo knowledge base: a hit at rank 1, one at rank 3, and a chunk no mode finds in the top 10
    (with a "not relevant" mark beside it); returns the chunk ids marked relevant, per question."""
    with MilvusStore(settings.milvus) as store:
        retriever = HybridRetriever.from_store(encoder, store, KB, settings.retrieval)
        hits = [retriever.search(q, top_k=60, mode="dense", min_score=0.0).documents for q in QUESTIONS]
    relevant = [hits[0][0], hits[1][2], hits[2][-1]]
    for query, doc in zip(QUESTIONS, relevant, strict=True):
        append_judgment(settings.app.data_dir, kb=KB, query=query, chunk_id=doc.metadata["id"],
                        source=doc.metadata["source"], label="relevant")
    append_judgment(settings.app.data_dir, kb=KB, query=QUESTIONS[1], chunk_id=hits[1][0].metadata["id"],
                    source=hits[1][0].metadata["source"], label="not_relevant")
    append_judgment(settings.app.data_dir, kb="other_kb", query="elsewhere", chunk_id="x", source="x.md",
                    label="relevant")
    return [doc.metadata["id"] for doc in relevant]


@pytest.fixture
def marked(demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder,
           tmp_path: Path) -> tuple[Settings, list[str]]:
    settings = use_settings(demo_kb, app={"data_dir": str(tmp_path / "data")})
    return settings, write_marks(settings, ui_encoder)


def open_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=180).run()
    at.switch_page("pages_/evaluation.py").run()
    assert not at.exception, at.exception
    return at


def tables(at: AppTest) -> list[pd.DataFrame]:
    """The read-only tables on the page, in page order (the metrics, then the significance)."""
    return [e.value for e in at.dataframe if e.editing_mode == "read_only"]


def test_run_shows_the_rag_metrics_charts_and_significance(
    marked: tuple[Settings, list[str]], ui_encoder: Encoder
) -> None:
    settings, _ = marked
    at = open_page()
    assert "3 questions with a relevant mark" in at.caption[1].value
    at.button(key="ev_run").click().run()
    assert not at.exception, at.exception

    qrels = load_judgments(judgments_path(settings.app.data_dir), KB)
    with MilvusStore(settings.milvus) as store:
        expected = evaluate_judgments(HybridRetriever.from_store(ui_encoder, store, KB, settings.retrieval),
                                      qrels, KS)
    metrics, significance = tables(at)
    assert list(metrics["mode"]) == ["dense", "sparse", "hybrid", "hybrid+rrf", "hybrid+colbert"]
    for row, result in zip(metrics.to_dict("records"), expected.results, strict=True):
        for name in expected.metrics:
            assert row[metric_label(name)] == pytest.approx(result.metrics[name], abs=1e-12), (result.mode, name)
    dense = expected.results[0]
    assert [q.rank for q in dense.questions] == [1, 3, None]  # the marks were made where the test put them

    charts = at.get("plotly_chart")
    assert len(charts) == 2
    ranks = json.loads(charts[1].proto.spec)["data"][0]
    assert ranks["x"] == [r.mode for r in expected.results]
    assert ranks["text"][0][0] == "1" and ranks["text"][1][0] == "3" and ranks["text"][2][0] == "missed"
    assert ranks["y"][1] == f"Q2 · {QUESTIONS[1]}"
    assert ranks["y"][2] == "Q3 · 年假有多少天？&lt;a href=&#x27;//x.test&#x27;&gt;x&lt;/a&gt; ![i](//x.test/i.png)"

    assert len(significance) == len(expected.comparisons) == 10 * len(expected.metrics)
    assert set(significance["verdict"]) == {"not significant (3 questions)"}
    assert list(significance["p"]) == pytest.approx([c.p for c in expected.comparisons])
    [miss] = [m.value for m in at.markdown if "Q3" in m.value]  # listed among the misses, as plain text
    assert visible_text(miss).startswith(f"Q3 {HOSTILE}")  # the tag and the image show as the text they are
    assert at.button(key="ev_explain_2") is not None


def assert_sent_to_explain(at: AppTest, request: dict[str, str]) -> None:
    """The app is on the Retrieval check page with ``request`` (the cross-page contract): still in session state
    where that page does not take it yet, else taken by it and its query box filled."""
    assert not at.exception, at.exception
    assert at.title[0].value == "Retrieval check"
    if "explain_request" in at.session_state:
        assert at.session_state["explain_request"] == request
    else:
        assert at.session_state["rc_query"] == request["query"]


def test_explain_button_sends_the_miss_to_the_retrieval_check_page(marked: tuple[Settings, list[str]]) -> None:
    _, relevant = marked
    at = open_page()
    at.button(key="ev_run").click().run()
    at.button(key="ev_explain_2").click().run()
    assert not at.exception, at.exception
    assert_sent_to_explain(at, {"kb": KB, "query": QUESTIONS[2], "chunk_id": relevant[2]})


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Every file the app hands to Streamlit's media storage (downloads), by file id: AppTest drops the storage
    after each run, so this records what the real storage stored."""
    files: dict[str, bytes] = {}
    store = MemoryMediaFileStorage.load_and_get_id

    def recorded(self: MemoryMediaFileStorage, data: str | bytes, mimetype: str, kind: Any,
                 filename: str | None = None) -> str:
        file_id = store(self, data, mimetype, kind, filename)
        files[file_id] = self.get_file(file_id).content
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recorded)
    return files


def download(at: AppTest, key: str, served: dict[str, bytes]) -> bytes:
    """The bytes download button ``key`` serves."""
    return served[at.download_button(key=key).proto.url.rsplit("/", 1)[-1].split(".")[0]]


def test_remove_a_mark_export_and_import(marked: tuple[Settings, list[str]], served: dict[str, bytes]) -> None:
    settings, relevant = marked
    path = judgments_path(settings.app.data_dir)
    at = open_page()
    editor = at.data_editor[0]
    assert list(editor.value["chunk_id"]) == [m.chunk_id for m in current_marks(path, KB)]
    exported = download(at, "ev_export", served).decode("utf-8")
    assert exported == export_marks(path, KB) and len(exported.splitlines()) == 4  # kb_a's marks, not other_kb's

    # Tick the second question's relevant mark and remove it: every other line stays.
    row = list(editor.value["chunk_id"]).index(relevant[1])
    at.session_state[editor.key] = {"edited_rows": {row: {"remove": True}}, "added_rows": [], "deleted_rows": []}
    at.button(key="ev_remove").click().run()
    assert not at.exception, at.exception
    assert "Removed 1 marks." in [s.value for s in at.success]
    assert relevant[1] not in [m.chunk_id for m in current_marks(path, KB)]
    assert len(current_marks(path, KB)) == 3 and load_judgments(path, "other_kb") == {"elsewhere": {"x": 1}}
    assert list(at.data_editor[0].value["chunk_id"]) == [m.chunk_id for m in current_marks(path, KB)]
    assert "2 questions with a relevant mark" in at.caption[1].value

    # A file with a bad line is refused with its line number, and nothing is written.
    before = path.read_bytes()
    good = json.dumps({"query": "Who approves remote work?", "chunk_id": relevant[0], "label": "relevant"})
    at.file_uploader[0].set_value(("marks.jsonl", f"{good}\n{{oops\n".encode(), "application/jsonl"))
    at.button(key="ev_import").click().run()
    assert "line 2 is not JSON" in at.error[0].value.replace("\\", "") and path.read_bytes() == before

    at.file_uploader[0].set_value(("marks.jsonl", f"{good}\n".encode(), "application/jsonl"))
    at.button(key="ev_import").click().run()
    assert not at.exception and "Imported 1 marks." in [s.value for s in at.success]
    assert load_judgments(path, KB)["Who approves remote work?"] == {relevant[0]: 1}
    assert "3 questions with a relevant mark" in at.caption[1].value


def test_the_page_in_chinese(marked: tuple[Settings, list[str]]) -> None:
    at = open_page()
    at.sidebar.radio[0].set_value("zh").run()
    assert not at.exception and at.title[0].value == "基于标注的检索评测"
    assert at.button(key="ev_run").label == "运行全部模式"


def test_a_beir_folder_against_the_knowledge_base(
    demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder, tmp_path: Path
) -> None:
    settings = use_settings(demo_kb, app={"data_dir": str(tmp_path / "data")})
    with MilvusStore(settings.milvus) as store:
        retriever = HybridRetriever.from_store(ui_encoder, store, KB, settings.retrieval)
        docs = [list(dict.fromkeys(d.metadata["doc_id"] for d in retriever.search(
            q, top_k=500, mode="dense", min_score=0.0).documents)) for q in QUESTIONS]
        first_chunk = ChunkBrowser(store.open(KB)).first_chunk(docs[2][-1])
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{n}", "text": q}, ensure_ascii=False) + "\n"
                                                  for n, q in enumerate(QUESTIONS)), encoding="utf-8")
    qrels = {"q0": docs[0][0], "q1": docs[1][1], "q2": docs[2][-1]}  # the last: far below the top 10 in dense
    (folder / "qrels" / "test.tsv").write_text("".join(f"{q}\t{d}\t1\n" for q, d in qrels.items()), encoding="utf-8")

    at = open_page()
    at.radio(key="ev_kind").set_value("beir").run()
    at.text_input(key="ev_beir_folder").set_value(str(folder)).run()
    at.text_input(key="ev_beir_prefix").set_value("").run()
    assert "3 judged queries" in at.caption[1].value.replace("\\", "") + at.caption[2].value.replace("\\", "")
    at.button(key="ev_run").click().run()
    assert not at.exception, at.exception

    with MilvusStore(settings.milvus) as store:
        expected = evaluate_questions(HybridRetriever.from_store(ui_encoder, store, KB, settings.retrieval),
                                      {f"q{n}": q for n, q in enumerate(QUESTIONS)},
                                      {q: {d: 1} for q, d in qrels.items()}, KS, key="doc_id")
    metrics, _ = tables(at)
    for row, result in zip(metrics.to_dict("records"), expected.results, strict=True):
        for name in expected.metrics:
            assert row[metric_label(name)] == pytest.approx(result.metrics[name], abs=1e-12), (result.mode, name)
    assert [q.rank for q in expected.results[0].questions] == [1, 2, None]
    at.button(key="ev_explain_2").click().run()  # a document's miss is explained on its first chunk
    assert first_chunk
    assert_sent_to_explain(at, {"kb": KB, "query": QUESTIONS[2], "chunk_id": first_chunk})


def test_the_cross_encoders_modes_are_chosen_and_measured_like_rag_eval(
    marked: tuple[Settings, list[str]], ui_encoder: Encoder
) -> None:
    settings, _ = marked
    at = open_page()
    assert at.multiselect(key="ev_modes").value == ["dense", "sparse", "hybrid", "hybrid+rrf", "hybrid+colbert"]
    assert {"hybrid+rerank", "dense+rerank"} <= set(at.multiselect(key="ev_modes").options)
    chosen = ["hybrid", "hybrid+rerank", "dense+rerank"]
    at.multiselect(key="ev_modes").set_value(chosen).run()
    at.button(key="ev_run").click().run()
    assert not at.exception and not at.error, at.exception

    qrels = load_judgments(judgments_path(settings.app.data_dir), KB)
    with MilvusStore(settings.milvus) as store:
        expected = evaluate_judgments(HybridRetriever.from_store(ui_encoder, store, KB, settings.retrieval),
                                      qrels, KS, modes=chosen)
    metrics, significance = tables(at)
    assert list(metrics["mode"]) == chosen
    for row, result in zip(metrics.to_dict("records"), expected.results, strict=True):
        assert not result.unavailable and row["queries/s"] > 0
        for name in expected.metrics:
            assert row[metric_label(name)] == pytest.approx(result.metrics[name], abs=1e-12), (result.mode, name)
    orders = {r.mode: [list(r.run[q]) for q in sorted(r.run)] for r in expected.results}
    assert orders["hybrid+rerank"] != orders["hybrid"]  # the cross-encoder reordered the candidates
    ranks = json.loads(at.get("plotly_chart")[1].proto.spec)["data"][0]
    assert ranks["x"] == chosen
    bars = [trace["name"] for trace in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert bars == chosen
    assert len(significance) == 3 * len(expected.metrics)

    at.multiselect(key="ev_modes").set_value([]).run()
    at.button(key="ev_run").click().run()
    assert [w.value for w in at.warning] == ["Choose at least one mode to run."]
