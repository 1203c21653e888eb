"""The Evaluation page's "Learn fusion weights" button through AppTest, where the answer is known: marks on part
codes that only the sparse score finds (tests.support.parts_kb), so the learned sparse weight must go up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from ingest.pipeline import IngestPipeline
from rag.config import Settings, load_settings
from rag.encoder import Encoder
from rag.evaluation import append_judgment, judgments_path, load_judgments
from rag.evaluation.report import metric_label
from rag.retrieval import HybridRetriever
from rag.store import MilvusStore
from rag.workbench.tune import TuneReport, apply_fusion, tune
from tests.support.ollama_server import OllamaTestServer
from tests.support.parts_kb import PARTS, write_parts
from tests.ui.conftest import APP
from tests.ui.test_evaluation_page import download, served  # noqa: F401 (served: a fixture)
from ui.safe_markdown import escape_markdown

KB = "parts"
QUESTIONS = 12  # few questions and folds keep the test short; enough for the sparse weight to show
FOLDS = 3
KS = [1, 3, 10]  # the page's Recall@1, @top-k (3 in these settings) and @10


@pytest.fixture(scope="module")
def parts_kb(ui_settings: Callable[..., Settings], ui_encoder: Encoder,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict[str, str]]]:
    """tests.support.parts_kb ingested as knowledge base "parts": its settings and part code -> chunk id."""
    folder = tmp_path_factory.mktemp("ui-parts")
    files = write_parts(folder / "docs")
    settings = ui_settings(folder, kb={"name": KB})
    with MilvusStore(settings.milvus) as store:
        report = IngestPipeline(settings, ui_encoder, store).run([folder / "docs"], kb=KB)
        assert not report.failed and report.chunks_written == PARTS
        by_source = {Path(r["source"]).name: r["id"] for r in store.open(KB).rows("", ["id", "source"])}
        yield settings, {code: by_source[name] for code, name in files.items()}


@pytest.fixture
def marked(parts_kb: tuple[Settings, dict[str, str]], use_settings: Callable[..., Settings],
           ollama_server: OllamaTestServer, tmp_path: Path) -> Settings:
    """The app on the parts knowledge base, with "part CODE" marked relevant on its chunk for a few parts."""
    settings = use_settings(parts_kb[0], app={"data_dir": str(tmp_path / "data")},
                            llm={"base_url": ollama_server.url})
    for code, chunk_id in list(parts_kb[1].items())[:QUESTIONS]:
        append_judgment(settings.app.data_dir, kb=KB, query=f"part {code}", chunk_id=chunk_id,
                        source=f"{code}.md", label="relevant")
    return settings


def expected_report(settings: Settings, encoder: Encoder) -> TuneReport:
    """What tune() gives for the page's inputs: the marks, the session's retrieval settings, the folds and ks."""
    qrels = load_judgments(judgments_path(settings.app.data_dir), KB)
    with MilvusStore(settings.milvus) as store:
        return tune(HybridRetriever.from_store(encoder, store, KB, settings.retrieval), qrels, folds=FOLDS, ks=KS)


def learn(at: AppTest) -> AppTest:
    at.switch_page("pages_/evaluation.py").run()
    at.number_input(key="ev_tune_folds").set_value(FOLDS).run()
    at.button(key="ev_tune").click().run()
    assert not at.exception, at.exception
    return at


def test_learned_weights_are_shown_held_out_applied_to_the_session_and_downloadable(
    marked: Settings, ui_encoder: Encoder, served: dict[str, bytes]  # noqa: F811
) -> None:
    expected = expected_report(marked, ui_encoder)
    assert expected.changed and expected.chosen == expected.learned  # the known answer: sparse must weigh more
    start = marked.retrieval
    ratio = expected.chosen.weights["sparse"] / expected.chosen.weights["dense"]
    assert ratio > start.weights.sparse / start.weights.dense

    at = AppTest.from_file(str(APP), default_timeout=180).run()
    at.switch_page("pages_/retrieval_check.py").run()  # its controls now hold the configured fusion
    assert at.session_state["rc_w_sparse"] == pytest.approx(start.weights.sparse)
    learn(at)
    [table] = [d.value for d in at.dataframe if "fold" in d.value.columns]
    assert list(table["fold"]) == [*(str(f.fold) for f in expected.folds), "all"]
    assert list(table["learned without them"])[:-1] == [f.learned.describe() for f in expected.folds]
    for name in ("ndcg@10", *(f"recall@{k}" for k in KS)):
        label = metric_label(name)
        assert list(table[f"{label} before"]) == pytest.approx(
            [*(f.before[name] for f in expected.folds), expected.held_out_before[name]], abs=1e-12)
        assert list(table[f"{label} after"]) == pytest.approx(
            [*(f.after[name] for f in expected.folds), expected.held_out_after[name]], abs=1e-12)
    text = "\n".join(m.value for m in at.markdown).replace("\\", "")
    assert f"**Current:** {expected.start.describe()}" in text
    assert f"**Chosen:** {expected.chosen.describe()}" in text
    assert any("the learned fusion is chosen" in s.value for s in at.success)

    # The download is the app's own config with the chosen fusion: it loads and reproduces the weights.
    config = Path(marked.app.data_dir) / "tuned.yaml"
    config.write_bytes(download(at, "ev_tune_download", served))
    loaded = load_settings(config)
    assert loaded.retrieval.fusion == expected.chosen.fusion
    assert loaded.retrieval.weights.model_dump() == pytest.approx(dict(expected.chosen.weights))
    assert loaded.milvus.uri == marked.milvus.uri and loaded.kb.name == KB  # over the app's config ($RAG_CONFIG)
    assert yaml.safe_load(config.read_text(encoding="utf-8"))["retrieval"]["top_k"] == 3

    # Apply: the session now uses the chosen fusion, and the button says so.
    assert not at.button(key="ev_tune_apply").disabled
    at.button(key="ev_tune_apply").click().run()
    assert not at.exception, at.exception
    assert at.button(key="ev_tune_apply").disabled
    assert "already uses the chosen fusion" in " ".join(c.value for c in at.caption)

    # The Retrieval check page's controls start from it, and its search ranks with it.
    at.switch_page("pages_/retrieval_check.py").run()
    assert at.session_state["rc_fusion"] == expected.chosen.fusion
    for name in ("dense", "sparse", "colbert"):
        assert at.session_state[f"rc_w_{name}"] == pytest.approx(expected.chosen.weights[name])
    query = next(iter(load_judgments(judgments_path(marked.app.data_dir), KB)))
    at.text_input(key="rc_query").set_value(query).run()
    at.button(key="rc_search").click().run()
    assert not at.exception, at.exception
    shown = at.session_state["rc_result"]
    with MilvusStore(marked.milvus) as store:
        tuned = HybridRetriever.from_store(ui_encoder, store, KB, apply_fusion(start, expected.chosen)).search(query)
    assert [d.metadata["id"] for d in shown.documents] == [d.metadata["id"] for d in tuned.documents]
    assert shown.formula == tuned.formula

    # The chat retrieves with it too.
    at.switch_page("pages_/chat.py").run()
    at.chat_input[0].set_value(query).run()
    assert not at.exception, at.exception
    [turn] = at.session_state["chat_turns"]
    assert [d["id"] for d in turn["documents"]] == [d.metadata["id"] for d in tuned.documents]
    assert tuned.formula in at.expander[0].code[0].value

    # Back to the configured fusion: the Retrieval check page's controls start from it again.
    at.switch_page("pages_/evaluation.py").run()  # the report stays in the session
    at.button(key="ev_tune_reset").click().run()
    assert not at.exception and not at.button(key="ev_tune_apply").disabled
    assert "ev_tune_reset" not in [b.key for b in at.button]
    at.switch_page("pages_/retrieval_check.py").run()
    assert at.session_state["rc_w_sparse"] == pytest.approx(start.weights.sparse)


def test_too_few_marks_say_so(parts_kb: tuple[Settings, dict[str, str]], use_settings: Callable[..., Settings],
                              tmp_path: Path) -> None:
    settings = use_settings(parts_kb[0], app={"data_dir": str(tmp_path / "data")})
    code, chunk_id = next(iter(parts_kb[1].items()))
    append_judgment(settings.app.data_dir, kb=KB, query=f"part {code}", chunk_id=chunk_id, source="x.md",
                    label="relevant")
    at = learn(AppTest.from_file(str(APP), default_timeout=180).run())
    assert "at least 2 questions" in at.error[0].value
    assert "ev_tune_apply" not in [b.key for b in at.button]


def test_marks_the_current_fusion_already_ranks_first_keep_it(
    parts_kb: tuple[Settings, dict[str, str]], use_settings: Callable[..., Settings], ui_encoder: Encoder,
    tmp_path: Path
) -> None:
    settings = use_settings(parts_kb[0], app={"data_dir": str(tmp_path / "data")})
    with MilvusStore(settings.milvus) as store:
        retriever = HybridRetriever.from_store(ui_encoder, store, KB, settings.retrieval)
        for code in list(parts_kb[1])[:QUESTIONS]:
            query = f"part {code}"
            top = retriever.search(query, top_k=1, min_score=0.0).documents[0]  # nothing can do better
            append_judgment(settings.app.data_dir, kb=KB, query=query, chunk_id=top.metadata["id"],
                            source=top.metadata["source"], label="relevant")
    expected = expected_report(settings, ui_encoder)
    assert expected.questions == QUESTIONS and not expected.changed and expected.notes

    at = learn(AppTest.from_file(str(APP), default_timeout=180).run())
    before, after = expected.held_out_before["ndcg@10"], expected.held_out_after["ndcg@10"]
    assert f"The current fusion is kept: held-out nDCG@10 did not rise ({before:.3f} -> {after:.3f})." in [
        i.value for i in at.info]
    assert [w.value for w in at.warning] == [escape_markdown(note) for note in expected.notes]
    assert f"**Chosen:** {expected.start.describe()}" in "\n".join(m.value for m in at.markdown).replace("\\", "")
    assert at.button(key="ev_tune_apply").disabled  # nothing to apply: the session already uses it

    at.sidebar.radio[0].set_value("zh").run()
    assert not at.exception and at.button(key="ev_tune").label == "学习融合权重"
    assert at.info[0].value.startswith("保留当前融合方式")
