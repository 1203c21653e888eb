"""The demo knowledge base for the API tests, the app over it (FastAPI's TestClient), and the LLM: the suite's
Ollama-protocol server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api import create_app
from ingest import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.store import MilvusStore
from tests.conftest import EXAMPLES
from tests.support.ollama_server import OllamaTestServer

KB = "api_kb"
KEY = "test-key-0123456789"
REPLY = "Employees may work remotely up to three days per week [1]. Fully remote needs approval [2]."
QUESTION = "How many days per week may employees work remotely?"


def with_sections(settings: Settings, **sections: dict[str, Any]) -> Settings:
    """A copy of ``settings`` with some keys of some sections changed."""
    return settings.model_copy(update={
        name: getattr(settings, name).model_copy(update=values) for name, values in sections.items()})


@pytest.fixture(scope="package")
def demo_kb(make_settings: Callable[..., Settings], encoder: Encoder,
            tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose knowledge base api_kb (embedded milvus-lite) holds examples/kb, ingested once."""
    settings = make_settings(tmp_path_factory.mktemp("api"), kb={"name": KB}, retrieval={"top_k": 3})
    with MilvusStore(settings.milvus) as store:
        report = IngestPipeline(settings, encoder, store).run([EXAMPLES], kb=KB)
        assert not report.failed
    return settings


@pytest.fixture
def api_settings(demo_kb: Settings, ollama_server: OllamaTestServer) -> Settings:
    ollama_server.behaviour.reply = REPLY
    return with_sections(demo_kb, llm={"base_url": ollama_server.url})


@pytest.fixture
def make_client() -> Iterator[Callable[[Settings], TestClient]]:
    """TestClients over given settings (the app's start-up and shut-down run), closed after the test."""
    clients: list[TestClient] = []

    def make(settings: Settings) -> TestClient:
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(api_settings: Settings, make_client: Callable[[Settings], TestClient]) -> TestClient:
    return make_client(api_settings)


def reference_search(settings: Settings, encoder: Encoder, query: str, **options: Any) -> dict[str, Any]:
    """`rag search --json`'s dict for the same query, computed with the library directly."""
    from rag.retrieval import HybridRetriever

    with MilvusStore(settings.milvus) as store:
        retriever = HybridRetriever.from_store(encoder, store, settings.kb.name, settings.retrieval)
        return retriever.search(query, **options).to_dict()


def data_dir(settings: Settings) -> Path:
    return Path(settings.app.data_dir)
