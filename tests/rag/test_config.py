"""Settings: YAML defaults, --config files, RAG_<SECTION>__<KEY> environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rag.config import DEFAULT_CONFIG, Settings, load_settings, with_overrides
from rag.errors import ConfigError


def test_defaults_come_from_default_yaml() -> None:
    s = load_settings()
    assert s.embedding.model == "BAAI/bge-m3"
    assert s.milvus.uri == "./data/milvus.db"
    assert (s.chunking.chunk_tokens, s.chunking.overlap_tokens) == (512, 64)
    assert s.kb.name == "default"


def test_config_file_then_environment_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "my.yaml"
    cfg.write_text("embedding:\n  model: /models/a\n  batch_size: 4\nkb:\n  name: docs\n")
    s = load_settings(cfg)
    assert (s.embedding.model, s.embedding.batch_size, s.kb.name) == ("/models/a", 4, "docs")
    assert s.chunking.chunk_tokens == 512  # untouched keys keep the defaults

    monkeypatch.setenv("RAG_EMBEDDING__MODEL", "/models/bge-m3")
    monkeypatch.setenv("RAG_MILVUS__URI", "http://127.0.0.1:19530")
    monkeypatch.setenv("RAG_INGEST__EXCLUDE", '["*.tmp"]')
    s = load_settings(cfg)
    assert s.embedding.model == "/models/bge-m3"
    assert s.embedding.batch_size == 4
    assert s.milvus.uri == "http://127.0.0.1:19530"
    assert s.ingest.exclude == ["*.tmp"]


def test_rag_config_env_names_the_extra_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("kb:\n  name: from_env_file\n")
    monkeypatch.setenv("RAG_CONFIG", str(cfg))
    assert load_settings().kb.name == "from_env_file"


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("chunking:\n  chunk_tokens: 64\n  overlap_tokens: 64\n", "overlap_tokens (64) must be smaller"),
        ("embedding:\n  device: tpu\n", "embedding.device"),
        ("kb:\n  name: 'bad name!'\n", "kb.name"),
        ("embedding:\n  max_length: 128\nchunking:\n  chunk_tokens: 512\n", "exceeds embedding.max_length"),
        ("unknown_section:\n  a: 1\n", "unknown_section"),
        ("- just\n- a list\n", "must hold a mapping"),
    ],
)
def test_invalid_settings_are_one_clear_error(tmp_path: Path, yaml_text: str, expected: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert expected in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")


def disagreements(yaml_data: dict[str, Any]) -> list[str]:
    """Where a defaults YAML differs from the models' defaults: missing or extra sections and keys, values."""
    problems = [f"section {name}" for name in set(yaml_data) ^ set(Settings.model_fields)]
    for section, field in Settings.model_fields.items():
        model_defaults = type(field.default)().model_dump()
        written = yaml_data.get(section) or {}
        problems += [f"{section}.{key} missing or extra" for key in set(written) ^ set(model_defaults)]
        problems += [f"{section}.{key}: yaml {written[key]!r}, model {value!r}"
                     for key, value in model_defaults.items() if key in written and written[key] != value]
    return problems


def test_default_yaml_agrees_with_the_models_key_by_key() -> None:
    """The pydantic models are the one source of defaults; configs/default.yaml documents them and must say the
    same: every section and key, no more, with the same values."""
    assert disagreements(yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))) == []


def test_the_agreement_check_sees_each_kind_of_difference() -> None:
    data = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    data["retrieval"]["top_k"] = 6
    del data["llm"]["model"]
    data["app"]["colour"] = "blue"
    assert sorted(disagreements(data)) == ["app.colour missing or extra", "llm.model missing or extra",
                                           "retrieval.top_k: yaml 6, model 5"]


def test_overrides_win_over_files_and_environment_and_are_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "my.yaml"
    cfg.write_text("retrieval:\n  top_k: 7\n")
    monkeypatch.setenv("RAG_RETRIEVAL__MODE", "sparse")
    monkeypatch.setenv("RAG_INGEST__TEXT_FIELD", "body")
    base = load_settings(cfg)
    flagged = load_settings(cfg, retrieval={"mode": "dense"}, ingest={"text_field": "content"})
    assert (base.retrieval.top_k, base.retrieval.mode, base.ingest.text_field) == (7, "sparse", "body")
    assert (flagged.retrieval.top_k, flagged.retrieval.mode, flagged.ingest.text_field) == (7, "dense", "content")
    with pytest.raises(ConfigError, match=r"retrieval\.mode"):
        load_settings(cfg, retrieval={"mode": "fuzzy"})


def test_rerank_is_one_setting_and_the_older_colbert_key_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = load_settings().retrieval
    assert (s.rerank, s.colbert_rerank, s.rerank_candidates) == ("none", False, 20)
    assert (s.reranker.model, s.reranker.max_length, s.reranker.device) == ("BAAI/bge-reranker-v2-m3", 512, "auto")
    old = tmp_path / "old.yaml"
    old.write_text("retrieval:\n  colbert_rerank: true\n")
    assert load_settings(old).retrieval.rerank == "colbert" and load_settings(old).retrieval.colbert_rerank
    new = tmp_path / "new.yaml"
    new.write_text("retrieval:\n  rerank: cross-encoder\n  colbert_rerank: false\n"
                   "  reranker:\n    model: /models/bge-reranker-v2-m3\n    batch_size: 4\n")
    s = load_settings(new).retrieval
    assert (s.rerank, s.cross_encoder_rerank, s.reranker.batch_size) == ("cross-encoder", True, 4)
    assert s.reranker.model == "/models/bge-reranker-v2-m3"
    monkeypatch.setenv("RAG_RETRIEVAL__COLBERT_RERANK", "true")
    assert load_settings(new).retrieval.rerank == "colbert"
    monkeypatch.delenv("RAG_RETRIEVAL__COLBERT_RERANK")
    monkeypatch.setenv("RAG_RETRIEVAL__RERANKER__DEVICE", "cpu")
    monkeypatch.setenv("RAG_RETRIEVAL__RERANK", "cross-encoder")
    s = load_settings().retrieval
    assert (s.rerank, s.reranker.device) == ("cross-encoder", "cpu")
    with pytest.raises(ConfigError, match=r"retrieval\.rerank"):
        load_settings(retrieval={"rerank": "bm25"})


def test_the_reranker_quantize_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().retrieval.reranker.quantize == "none"
    monkeypatch.setenv("RAG_RETRIEVAL__RERANKER__QUANTIZE", "int8")
    assert load_settings().retrieval.reranker.quantize == "int8"
    with pytest.raises(ConfigError, match=r"quantize"):
        load_settings(retrieval={"reranker": {"quantize": "int4"}})


def test_the_rerank_weight_is_written_only_when_set() -> None:
    s = load_settings().retrieval
    assert s.weights.model_dump() == {"dense": 1.0, "sparse": 0.3, "colbert": 1.0}
    weighted = load_settings(retrieval={"weights": {"rerank": 2.0}}).retrieval
    assert weighted.weights.model_dump() == {"dense": 1.0, "sparse": 0.3, "colbert": 1.0, "rerank": 2.0}
    assert with_overrides(weighted, top_k=3).weights.rerank == 2.0  # per-call overrides keep it
