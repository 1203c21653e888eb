"""The demo knowledge base (examples/kb ingested with the tiny bge-m3-format model), one per test module."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ingest import IngestPipeline
from rag.config import RetrievalSettings, Settings
from rag.encoder import Encoder
from rag.retrieval import HybridRetriever
from rag.store import MilvusStore
from tests.conftest import EXAMPLES

KB = "demo"


@pytest.fixture(scope="module")
def demo(encoder: Encoder, make_settings: Callable[..., Settings],
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, MilvusStore]]:
    """Settings and an open store holding knowledge base ``demo``: every file of examples/kb, ingested."""
    settings = make_settings(tmp_path_factory.mktemp("demo-kb"))
    store = MilvusStore(settings.milvus)
    report = IngestPipeline(settings, encoder, store).run([EXAMPLES], kb=KB)
    assert not report.failed and report.chunks_written > 50
    yield settings, store
    store.close()


@pytest.fixture(scope="module")
def make_retriever(encoder: Encoder, demo: tuple[Settings, MilvusStore]) -> Callable[..., HybridRetriever]:
    """A retriever on the demo knowledge base with the given retrieval settings."""

    def make(**retrieval: Any) -> HybridRetriever:
        return HybridRetriever.from_store(encoder, demo[1], KB, RetrievalSettings(**retrieval))

    return make
