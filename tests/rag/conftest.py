"""Fixtures for the answering chain: a test-owned server speaking Ollama's HTTP API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.ollama_server import ChatBehaviour, OllamaTestServer, free_port


@pytest.fixture
def ollama_server() -> Iterator[OllamaTestServer]:
    """A fresh Ollama-protocol server on 127.0.0.1; set ``ollama_server.behaviour`` fields to shape replies."""
    with OllamaTestServer(ChatBehaviour()) as server:
        yield server


@pytest.fixture
def offline_url() -> str:
    """A URL where nothing listens (a closed port), as when Ollama is not running."""
    return f"http://127.0.0.1:{free_port()}"
