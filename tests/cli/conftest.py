"""The demo knowledge base for the `rag` command tests: examples/kb ingested with the tiny model, per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ingest import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.store import MilvusStore
from tests.conftest import EXAMPLES


@pytest.fixture
def demo(settings: Settings, encoder: Encoder) -> Iterator[Settings]:
    """Settings whose knowledge base (kb.name) holds every file of examples/kb."""
    with MilvusStore(settings.milvus) as store:
        IngestPipeline(settings, encoder, store).run([EXAMPLES])
    yield settings
