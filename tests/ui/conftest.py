"""Fixtures for the web app: the demo knowledge base on embedded milvus-lite, settings handed to the app through
a $RAG_CONFIG file, and the test-owned Ollama-protocol server (shared with tests/rag)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.pipeline import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder, load_encoder
from rag.store import MilvusStore
from tests.conftest import EXAMPLES, ROOT

APP = ROOT / "ui" / "app.py"
KB = "ui_kb"


def write_config(settings: Settings, path: Path) -> Path:
    """All settings as one YAML file, the way a user hands the app a config ($RAG_CONFIG)."""
    path.write_text(yaml.safe_dump(settings.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def ui_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    """make_settings with knowledge base ui_kb, top_k 3 and the data dir under ``tmp``."""

    def make(tmp: Path, **sections: dict[str, Any]) -> Settings:
        base: dict[str, dict[str, Any]] = {
            "kb": {"name": KB}, "retrieval": {"top_k": 3},
            "app": {"data_dir": str(tmp / "data")}, "llm": {"timeout_s": 10.0},
        }
        for name, values in sections.items():
            base[name] = {**base.get(name, {}), **values}
        return make_settings(tmp, **base)

    return make


@pytest.fixture(scope="session")
def ui_encoder(ui_settings: Callable[..., Settings], tmp_path_factory: pytest.TempPathFactory) -> Encoder:
    """The same (process-wide) encoder instance the app loads for these settings."""
    encoder = load_encoder(ui_settings(tmp_path_factory.mktemp("ui-enc")).embedding)
    assert all(encoder.encode(["remote work days per week", "年假有多少天"]).sparse)
    return encoder


@pytest.fixture(scope="module")
def demo_kb(ui_settings: Callable[..., Settings], ui_encoder: Encoder,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The demo knowledge base ingested once per module; yields its settings."""
    settings = ui_settings(tmp_path_factory.mktemp("ui"))
    with MilvusStore(settings.milvus) as store:
        report = IngestPipeline(settings, ui_encoder, store).run([EXAMPLES], kb=KB)
        assert not report.failed and report.chunks_written > 0
        yield settings


@pytest.fixture
def use_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Settings]:
    """Point the app at ``settings`` with ``updates`` (section dicts) applied, via a $RAG_CONFIG file."""

    def apply(settings: Settings, **updates: dict[str, Any]) -> Settings:
        data = settings.model_dump(mode="json")
        for section, values in updates.items():
            data[section] = {**data[section], **values}
        result = Settings.model_validate(data)
        for name in list(os.environ):
            if name.startswith("RAG_"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("RAG_CONFIG", str(write_config(result, tmp_path / "config.yaml")))
        return result

    return apply
