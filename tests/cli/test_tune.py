"""`rag tune` through the real console script: the JSON is the library's report, the written config loads back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import IngestPipeline
from rag.config import Settings, load_settings
from rag.encoder import Encoder
from rag.evaluation import load_judgments
from rag.retrieval import HybridRetriever
from rag.store import MilvusStore
from rag.workbench.tune import tune
from tests.conftest import run_cli
from tests.support.parts_kb import write_parts

QUESTIONS = 16
HOSTILE = "part \x1b[2J\x1b]0;owned\x07 ABC-123"


@pytest.fixture
def judged(settings: Settings, encoder: Encoder, tmp_path: Path) -> Iterator[Path]:
    """The parts knowledge base as kb.name, and a judgments file: each "part CODE" marks the chunk with the code."""
    files = write_parts(tmp_path / "parts")
    with MilvusStore(settings.milvus) as store:
        IngestPipeline(settings, encoder, store).run([tmp_path / "parts"])
        rows = store.open(settings.kb.name).rows("", ["id", "source"])
    by_file = {Path(row["source"]).name: row["id"] for row in rows}
    path = tmp_path / "judgments.jsonl"
    marks = [{"kb": settings.kb.name, "query": f"part {code}", "chunk_id": by_file[name], "source": name,
              "label": "relevant", "time": "2026-11-30T08:00:00+00:00"}
             for code, name in list(files.items())[:QUESTIONS]]
    marks.append({**marks[0], "query": HOSTILE})
    path.write_text("".join(json.dumps(mark) + "\n" for mark in marks), encoding="utf-8")
    yield path


def test_tune_json_is_the_librarys_report_and_the_config_reproduces_the_weights(
    judged: Path, settings: Settings, encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "tuned.yaml"
    result = run_cli(["tune", "--judgments", str(judged), "--folds", "3", "--k", "1,5", "--out", str(out),
                      "--json"], settings, program="rag")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    with MilvusStore(settings.milvus) as store:
        retriever = HybridRetriever.from_store(encoder, store, settings.kb.name, settings.retrieval)
        expected = tune(retriever, load_judgments(judged, settings.kb.name), folds=3, ks=(1, 5))
    assert printed["chosen"] == expected.chosen.to_dict() and printed["changed"] == expected.changed
    assert printed["questions"] == QUESTIONS + 1 and len(printed["folds"]) == 3
    for fold, want in zip(printed["folds"], expected.folds, strict=True):
        assert fold["questions"] == want.questions and fold["learned"] == want.learned.to_dict()
        assert fold["after"] == pytest.approx(want.after) and fold["before"] == pytest.approx(want.before)
    assert printed["held_out"]["after"]["ndcg@10"] > printed["held_out"]["before"]["ndcg@10"]
    assert printed["config_file"] == str(out)
    monkeypatch.delenv("RAG_CONFIG", raising=False)
    tuned = load_settings(out).retrieval
    assert (tuned.fusion, tuned.weights.model_dump()) == (printed["chosen"]["fusion"], printed["chosen"]["weights"])


def test_tune_with_the_cross_encoder_tunes_the_rerank_weight_as_the_library_does(
    judged: Path, settings: Settings, encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reranking = settings.model_copy(update={"retrieval": settings.retrieval.model_copy(
        update={"rerank": "cross-encoder", "rerank_candidates": 6})})
    out = tmp_path / "tuned.yaml"
    result = run_cli(["tune", "--judgments", str(judged), "--folds", "2", "--k", "1,5", "--out", str(out), "--json"],
                     reranking, program="rag")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    with MilvusStore(settings.milvus) as store:
        retriever = HybridRetriever.from_store(encoder, store, settings.kb.name, reranking.retrieval)
        expected = tune(retriever, load_judgments(judged, settings.kb.name), folds=2, ks=(1, 5))
    assert printed["start"]["rerank"] is True and printed["start"]["weights"]["rerank"] == 1.0
    assert printed["chosen"] == expected.chosen.to_dict() and printed["rerank_pairs"] == expected.rerank_pairs > 0
    assert printed["all_questions"]["after"] == pytest.approx(expected.all_after)
    monkeypatch.delenv("RAG_CONFIG", raising=False)
    tuned = load_settings(out).retrieval
    assert tuned.weights.model_dump() == printed["chosen"]["weights"]


def test_tune_table_over_a_users_config_is_escaped_and_says_where_it_wrote(
    judged: Path, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "mine.yaml"
    base.write_text("# my settings\nretrieval:\n  top_k: 7\n  rrf_k: 30\n", encoding="utf-8")
    out = tmp_path / "out" / "tuned.yaml"
    result = run_cli(["tune", "--judgments", str(judged), "--folds", "2", "--config", str(base), "--out", str(out)],
                     settings, program="rag")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert "fold" in result.stdout and "before → after" in result.stdout
    assert "learned on all 17 questions" in result.stdout and "chosen: hybrid weighted" in result.stdout
    assert f"written to {out}" in result.stdout.replace("\n", "")
    monkeypatch.delenv("RAG_CONFIG", raising=False)
    tuned = load_settings(out).retrieval
    assert (tuned.top_k, tuned.rrf_k) == (7, 30)  # the user's config, with the fusion learned
    assert tuned.weights.sparse > settings.retrieval.weights.sparse


@pytest.mark.parametrize("args, message", [
    (["--folds", "1"], "--folds"),
    (["--k", "1,x"], "--k"),
    (["--config", "same.yaml", "--out", "same.yaml"], "--out"),
])
def test_tune_usage_errors_print_the_usage_not_a_traceback(
    settings: Settings, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "same.yaml").write_text("{}\n", encoding="utf-8")
    result = run_cli(["tune", "--judgments", "j.jsonl", *args], settings, program="rag", cwd=tmp_path)
    assert result.returncode == 2
    assert "Usage:" in result.stderr and message in result.stderr and "Traceback" not in result.stderr


def test_tune_without_judgments_is_one_clear_error(settings: Settings, tmp_path: Path) -> None:
    result = run_cli(["tune", "--judgments", str(tmp_path / "none.jsonl")], settings, program="rag")
    assert result.returncode == 2 and "no judgments at" in result.stderr and "Traceback" not in result.stderr
