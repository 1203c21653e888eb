"""The Retrieval check page's "explain a miss" through AppTest, on the demo knowledge base: the figures are those
rag.workbench.explain.explain returns for the page's settings, Apply sets the control and the search then finds the
chunk, and an explain_request from another page opens the explanation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ingest.pipeline import IngestPipeline
from rag.config import Settings, with_overrides
from rag.encoder import Encoder
from rag.retrieval import HybridRetriever, SearchFilters
from rag.store import MilvusStore
from rag.store.knowledge_base import quote
from rag.workbench.explain import Explanation, Fix, explain, explain_document
from tests.support.rendered import visible_text
from tests.ui.conftest import APP, KB

QUERY = "How does the sync engine resolve conflicts?"


def start() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("pages_/retrieval_check.py").run()
    assert not at.exception, at.exception
    return at


def expected(settings: Settings, encoder: Encoder, chunk_id: str, **retrieval: Any) -> Explanation:
    """What rag.workbench.explain.explain says for the page's settings (``retrieval`` over the app's)."""
    with MilvusStore(settings.milvus) as store:
        cfg = with_overrides(settings.retrieval, **retrieval)
        return explain(HybridRetriever.from_store(encoder, store, KB, cfg), QUERY, chunk_id)


def ranked_ids(settings: Settings, encoder: Encoder, **retrieval: Any) -> list[str]:
    with MilvusStore(settings.milvus) as store:
        cfg = with_overrides(settings.retrieval, **retrieval)
        documents = HybridRetriever.from_store(encoder, store, KB, cfg).search(QUERY).documents
        return [d.metadata["id"] for d in documents]


def first_fixable(settings: Settings, encoder: Encoder, wanted: Callable[[Fix], bool],
                  **retrieval: Any) -> tuple[str, Explanation, Fix]:
    """The first chunk ranked 4th to 12th (top_k 3 with ``retrieval``) that a working fix ``wanted`` brings in."""
    for chunk_id in ranked_ids(settings, encoder, top_k=12, **retrieval)[3:]:
        result = expected(settings, encoder, chunk_id, top_k=3, **retrieval)
        fix = next((f for f in result.fixes if wanted(f) and f.works), None)
        if fix is not None:
            return chunk_id, result, fix
    raise AssertionError(f"no chunk of the demo knowledge base that such a fix brings in with {retrieval}")


def explain_on_page(at: AppTest, chunk_id: str, top_k: int) -> None:
    at.text_input(key="rc_query").set_value(QUERY)
    at.number_input(key="rc_top_k").set_value(top_k)
    at.text_input(key="rcx_target").set_value(chunk_id)
    at.button(key="rcx_explain").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    """The (one) table on the page that has ``column``."""
    (table,) = [d.value for d in at.dataframe if column in d.value.columns]
    return table


def score_rows(at: AppTest) -> dict[str, dict[str, Any]]:
    """The explanation's score table (an st.table: visible as text in a browser too), by score name."""
    (table,) = [t.value for t in at.table if "rank among all chunks" in t.value.columns]
    return table.to_dict("index")


def assert_shows(at: AppTest, result: Explanation) -> None:
    """The page shows the explanation's verdict, scores, ranks and candidate positions."""
    verdicts = [visible_text(e.value) for e in (*at.warning, *at.success)]
    assert any(result.reason in v and result.chunk_id[:12] in v for v in verdicts), verdicts
    rows = score_rows(at)
    for name in ("dense", "sparse", "final"):
        assert rows[name]["value"] == pytest.approx(result.scores.value(name), abs=1e-6)
    for name, rank in (("dense", result.dense), ("sparse", result.sparse)):
        assert rows[name]["rank among all chunks"] == rank.describe()
        assert rows[name]["position in Milvus' list"] == ("" if rank.position is None else str(rank.position))
    assert any(c.value == f"Lost at: {result.lost_at}. Candidate lists: {result.candidate_limit} chunks each "
               "(top_k x candidate_factor)." for c in at.caption)


def test_explain_shows_the_figures_of_explain_and_apply_brings_the_chunk_in(
    demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder
) -> None:
    settings = use_settings(demo_kb)
    fifth = ranked_ids(settings, ui_encoder, top_k=5)[4]
    result = expected(settings, ui_encoder, fifth, top_k=3)
    assert result.lost_at == "top_k" and result.pool_rank == 5
    at = start()
    explain_on_page(at, fifth, top_k=3)
    assert_shows(at, result)
    assert "ranked 5 after fusion, below top_k 3" in visible_text(at.warning[0].value)
    fixes = {f.setting: f for f in result.fixes}
    assert fixes["top_k"].value == 5 and fixes["top_k"].retrieved_rank == 5
    shown = [visible_text(m.value) for m in at.markdown]
    assert "top_k = 5: retrieved at rank 5" in shown

    assert len([b for b in at.button if b.label == "Apply"]) == len(result.fixes)  # each maps to a control
    apply_button(at, "top_k").click().run()
    assert not at.exception and not at.error
    assert at.number_input(key="rc_top_k").value == 5
    assert len(table_with(at, "rank")) == 5  # the search ran again with top_k 5
    # The search ran again with the new top_k and the explanation now says it is retrieved.
    assert any("retrieved at rank 5 of 5" in visible_text(s.value) for s in at.success)
    at.button(key="rc_search").click().run()
    ids = [d.metadata["id"] for d in at.session_state["rc_result"].documents]
    assert ids[4] == fifth


def test_a_sparse_weight_fix_applied_sets_the_weight_control(
    demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder
) -> None:
    settings = use_settings(demo_kb)
    dense_only = {"dense": 1.0, "sparse": 0.0, "colbert": 1.0}
    chunk_id, result, fix = first_fixable(settings, ui_encoder, lambda f: f.setting == "weights.sparse",
                                          candidate_factor=4, weights=dense_only)
    at = start()
    at.number_input(key="rc_w_sparse").set_value(0.0)
    explain_on_page(at, chunk_id, top_k=3)
    assert_shows(at, result)
    apply_button(at, "weights.sparse").click().run()
    assert at.number_input(key="rc_w_sparse").value == pytest.approx(fix.value)
    ids = [d.metadata["id"] for d in at.session_state["rc_result"].documents]
    assert chunk_id in ids and ids.index(chunk_id) + 1 == fix.retrieved_rank


def apply_button(at: AppTest, setting: str) -> Any:
    """The Apply button of the fix that changes ``setting`` (fix lines and their buttons are numbered in order)."""
    lines = [visible_text(m.value) for m in at.markdown if m.value.startswith("- ")]
    (index,) = [i for i, line in enumerate(lines) if line.startswith(f"{setting} = ")]
    return at.button(key=f"rcx_fix_{index}")


def test_explain_a_document_lists_every_chunk(
    demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder
) -> None:
    settings = use_settings(demo_kb)
    best = ranked_ids(settings, ui_encoder)[0]
    at = start()
    at.text_input(key="rc_query").set_value(QUERY)
    with MilvusStore(settings.milvus) as store:
        kb = store.open(KB)
        (row,) = kb.rows(f'id == "{best}"', ["source"], limit=1)
        results = explain_document(HybridRetriever.from_store(ui_encoder, store, KB, settings.retrieval), QUERY,
                                   row["source"])
    at.text_input(key="rcx_target").set_value(row["source"])
    at.button(key="rcx_explain").click().run()
    assert not at.exception and not at.error
    table = table_with(at, "lost_at")
    assert list(table["id"]) == [r.chunk_id for r in results]
    assert list(table["lost_at"]) == [r.lost_at for r in results]
    assert at.selectbox(key="rcx_pick").value == [r.chunk_id for r in results].index(best)
    assert_shows(at, next(r for r in results if r.chunk_id == best))


def test_an_unknown_chunk_or_an_empty_query_is_said(
    demo_kb: Settings, use_settings: Callable[..., Settings]
) -> None:
    use_settings(demo_kb)
    at = start()
    at.text_input(key="rcx_target").set_value("no-such-chunk")
    at.text_input(key="rc_query").set_value(QUERY)
    at.button(key="rcx_explain").click().run()
    assert [visible_text(e.value) for e in at.error] == [
        "Knowledge base 'ui_kb' has no chunk with id 'no-such-chunk' and no document 'no-such-chunk'."]
    at.text_input(key="rc_query").set_value(" ")
    at.text_input(key="rcx_target").set_value("README.md")
    at.button(key="rcx_explain").click().run()
    assert [visible_text(e.value) for e in at.error] == [
        "The query is empty: type the question the chunk should answer."]


def test_an_explain_request_from_another_page_opens_the_explanation(
    demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder
) -> None:
    settings = use_settings(demo_kb)
    fifth = ranked_ids(settings, ui_encoder, top_k=5)[4]
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.session_state["explain_request"] = {"kb": KB, "query": QUERY, "chunk_id": fifth}
    at.switch_page("pages_/retrieval_check.py").run()
    assert not at.exception and not at.error
    assert at.text_input(key="rc_query").value == QUERY and at.text_input(key="rcx_target").value == fifth
    assert "explain_request" not in at.session_state
    assert_shows(at, expected(settings, ui_encoder, fifth))

    at.session_state["explain_request"] = {"kb": "other_kb", "query": "", "chunk_id": fifth}
    at.run()
    assert any("'other_kb' asked for by the other page does not exist" in visible_text(w.value) for w in at.warning)
    assert at.text_input(key="rc_query").value == "" and at.text_input(key="rcx_target").value == fifth
    assert "rcx_result" not in at.session_state


def test_a_min_score_fix_applied_sets_the_sidebars_min_score(
    demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder
) -> None:
    settings = use_settings(demo_kb)
    first = ranked_ids(settings, ui_encoder)[0]
    with MilvusStore(settings.milvus) as store:
        top = HybridRetriever.from_store(ui_encoder, store, KB, settings.retrieval).search(QUERY).documents[0]
    too_high = round(top.metadata["scores"]["final"] + 0.05, 2)
    result = expected(settings, ui_encoder, first, min_score=too_high)
    assert result.lost_at == "min_score"
    (fix,) = result.fixes
    at = start()
    at.sidebar.number_input(key="opt_min_score").set_value(too_high)
    explain_on_page(at, first, top_k=3)
    assert_shows(at, result)
    apply_button(at, "min_score").click().run()
    assert not at.exception and not at.error
    assert at.sidebar.number_input(key="opt_min_score").value == pytest.approx(fix.value)
    ids = [d.metadata["id"] for d in at.session_state["rc_result"].documents]
    assert ids[0] == first
    assert any("retrieved at rank 1 of 3" in visible_text(s.value) for s in at.success)


def test_file_names_and_text_of_documents_are_shown_as_text(
    ui_settings: Callable[..., Settings], ui_encoder: Encoder, use_settings: Callable[..., Settings],
    tmp_path: Path
) -> None:
    name = "notes_*x*_[see](x.png)_<b>.txt"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / name).write_text("Sync conflicts: <script>alert(1)</script> keeps both versions.\n", encoding="utf-8")
    settings = use_settings(ui_settings(tmp_path))
    with MilvusStore(settings.milvus) as store:
        report = IngestPipeline(settings, ui_encoder, store).run([docs], kb=KB)
        assert not report.failed
        (row,) = store.open(KB).rows("", ["id"])
    at = start()
    explain_on_page(at, row["id"], top_k=3)
    (verdict,) = at.success
    assert visible_text(verdict.value).startswith(f"{name} · chunk 1 · id {row['id'][:12]}: retrieved at rank 1")
    assert "](" not in verdict.value.replace("\\](", "").replace("\\(", "")  # every bracket escaped: no link
    (text,) = [h.value for h in at.get("html") if 'class="rs-text"' in h.value]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>" not in text


def test_a_fusion_fix_under_rrf_applies_every_setting_it_changes(
    demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder
) -> None:
    settings = use_settings(demo_kb)
    chunk_id, result, fix = first_fixable(settings, ui_encoder, lambda f: "fusion" in (f.also | {f.setting: 0}),
                                          fusion="rrf")
    at = start()
    at.selectbox(key="rc_fusion").set_value("rrf")
    explain_on_page(at, chunk_id, top_k=3)
    assert_shows(at, result)
    lines = [visible_text(m.value) for m in at.markdown if m.value.startswith("- ")]
    (index,) = [i for i, line in enumerate(lines) if line.startswith(fix.describe() + ":")]
    at.button(key=f"rcx_fix_{index}").click().run()
    assert not at.exception and not at.error
    changes = {**fix.also, fix.setting: fix.value}
    assert at.selectbox(key="rc_fusion").value == changes["fusion"]
    if "weights.sparse" in changes:
        assert at.number_input(key="rc_w_sparse").value == pytest.approx(changes["weights.sparse"])
    ids = [d.metadata["id"] for d in at.session_state["rc_result"].documents]
    assert chunk_id in ids and ids.index(chunk_id) + 1 == fix.retrieved_rank


def test_with_the_cross_encoder_the_score_table_has_its_score(
    demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder
) -> None:
    settings = use_settings(demo_kb, retrieval={"rerank": "cross-encoder", "rerank_candidates": 3})
    fifth = ranked_ids(settings, ui_encoder, top_k=5)[4]
    result = expected(settings, ui_encoder, fifth, top_k=3)
    assert result.lost_at != "retrieved" and result.rerank is not None and result.scores.rerank is None
    at = start()
    explain_on_page(at, fifth, top_k=3)
    assert_shows(at, result)
    rows = score_rows(at)
    assert rows["rerank"]["value"] == pytest.approx(result.rerank.normalised, abs=1e-6)
    assert rows["rerank_raw"]["value"] == pytest.approx(result.rerank.raw, abs=1e-6)
    assert rows["rerank"]["rank among all chunks"] == "not in final: scored for this explanation"


def test_explain_uses_the_scope_filters_of_the_search(
    demo_kb: Settings, use_settings: Callable[..., Settings], ui_encoder: Encoder
) -> None:
    """A chunk the popover's filter leaves out is explained as lost to that filter, as rag explain says with the
    same filter, not ranked as if the search had no filter."""
    settings = use_settings(demo_kb)
    first = ranked_ids(settings, ui_encoder, top_k=3)[0]
    with MilvusStore(settings.milvus) as store:
        source = store.open(KB).rows(f"id == {quote(first)}", ["source"], limit=1)[0]["source"]
        other = next(s for s in sorted({r["source"] for r in store.open(KB).rows("", ["source"])}) if s != source)
        filters = SearchFilters(source=other)
        result = explain(HybridRetriever.from_store(ui_encoder, store, KB, settings.retrieval,
                                                    filters=filters), QUERY, first)
    assert result.lost_at == "filters" and result.dropped_by
    at = start()
    at.text_input(key="rc_scope_source").set_value(other)
    explain_on_page(at, first, top_k=settings.retrieval.top_k)
    assert_shows(at, result)
    assert any(f"filters {filters.expression()}" in c.value.replace("\\", "") for c in at.caption)
