"""Settings: YAML defaults, --config files, RAG_<SECTION>__<KEY> environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import load_settings
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
