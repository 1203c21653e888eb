"""Shared fixtures: tiny bge-m3- and bge-reranker-format models, settings on a temporary milvus-lite, a milvus-lite
server."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from rag.config import Settings, load_settings
from rag.encoder import Encoder, load_encoder
from rag.testing.tiny_bge_m3 import build_bge_m3_like
from rag.testing.tiny_bge_reranker import build_bge_reranker_like
from tests.support.ollama_server import ChatBehaviour, OllamaTestServer, free_port
from tests.support.processes import listening, serving

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "kb"
TEXT_SUFFIXES = {".md", ".txt", ".html", ".csv", ".json", ".jsonl"}


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist workers share the cores: torch's default of one thread per core in every worker, and in every
    console script a test starts (they inherit OMP_NUM_THREADS), would oversubscribe them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def example_texts() -> list[str]:
    """Raw text of the demo knowledge base, so the tiny tokenizer knows its characters."""
    return [
        p.read_text(encoding="utf-8", errors="ignore")
        for p in sorted(EXAMPLES.rglob("*")) if p.suffix in TEXT_SUFFIXES
    ]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bge_m3_like(tmp_path_factory.mktemp("tiny-bge-m3"), seed=0, extra_texts=example_texts(),
                             max_length=512)


@pytest.fixture(scope="session")
def tiny_reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded cross-encoder in bge-reranker-v2-m3's on-disk format, its tokenizer trained like the tiny bge-m3's."""
    return build_bge_reranker_like(tmp_path_factory.mktemp("tiny-bge-reranker"), seed=0, extra_texts=example_texts(),
                                   max_length=512)


@pytest.fixture(scope="session")
def make_settings(tiny_model_dir: Path, tiny_reranker_dir: Path) -> Callable[..., Settings]:
    """Settings for the tiny models; keyword arguments are section overrides, e.g. milvus={"uri": ...}."""

    def make(tmp: Path, **sections: dict[str, Any]) -> Settings:
        base: dict[str, dict[str, Any]] = {
            "embedding": {"model": str(tiny_model_dir), "device": "cpu", "batch_size": 8, "max_length": 512},
            "retrieval": {"reranker": {"model": str(tiny_reranker_dir), "device": "cpu"}},
            "milvus": {"uri": str(tmp / "milvus.db")},
            "chunking": {"chunk_tokens": 96, "overlap_tokens": 16},
            "kb": {"name": "test_kb"},
            "app": {"data_dir": str(tmp / "data")},
        }
        for name, values in sections.items():
            base[name] = {**base.get(name, {}), **values}
        return load_settings(**base)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def encoder(make_settings: Callable[..., Settings], tmp_path_factory: pytest.TempPathFactory) -> Encoder:
    return load_encoder(make_settings(tmp_path_factory.mktemp("enc")).embedding)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `milvus-lite server` on 127.0.0.1; yields its http:// URI."""
    port = free_port()
    data = tmp_path_factory.mktemp("milvus-server") / "server.db"
    exe = Path(sys.executable).parent / "milvus-lite"
    with serving([str(exe), "server", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port)],
                 ready=lambda: listening(port), what="milvus-lite server", log=data.parent / "server.log",
                 timeout_s=60):
        yield f"http://127.0.0.1:{port}"


def cli_env(settings: Settings) -> dict[str, str]:
    """Environment that points a `rag-ingest` subprocess at these settings."""
    env = {**os.environ, "COLUMNS": "200"}
    for section in type(settings).model_fields:
        for key, value in getattr(settings, section).model_dump().items():
            if value is None:
                continue
            text = value if isinstance(value, str) else json.dumps(value)
            env[f"RAG_{section.upper()}__{key.upper()}"] = text
    return env


def run_cli(
    args: list[str], settings: Settings, program: str = "rag-ingest", extra_env: dict[str, str] | None = None,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """Run a console script of this project (rag-ingest or rag) with ``settings`` in its environment."""
    exe = Path(sys.executable).parent / program
    return subprocess.run([str(exe), *args], env={**cli_env(settings), **(extra_env or {})}, capture_output=True,
                          text=True, timeout=600, **kwargs)


@pytest.fixture
def ollama_server() -> Iterator[OllamaTestServer]:
    """A fresh Ollama-protocol server on 127.0.0.1; set ``ollama_server.behaviour`` fields to shape replies."""
    with OllamaTestServer(ChatBehaviour()) as server:
        yield server


@pytest.fixture
def offline_url() -> str:
    """A URL where nothing listens (a closed port), as when Ollama is not running."""
    return f"http://127.0.0.1:{free_port()}"
