"""The compose code path: configs/docker.yaml with a Milvus server URI and an Ollama URL, all over http://.

Milvus standalone is stood in for by `milvus-lite server` on 127.0.0.1 (the same gRPC API), Ollama by the suite's
own server; the commands are the console scripts the containers run.
"""

from __future__ import annotations

import json
from pathlib import Path

from rag.config import Settings, load_settings
from tests.conftest import EXAMPLES, ROOT, run_cli
from tests.support.ollama_server import ChatBehaviour, OllamaTestServer

DOCKER_CONFIG = ROOT / "configs" / "docker.yaml"


def compose_settings(settings: Settings, milvus_uri: str, ollama_url: str, data_dir: Path) -> Settings:
    """docker.yaml, with the service addresses of this test and the tiny model."""
    return load_settings(
        DOCKER_CONFIG,
        embedding=settings.embedding.model_dump(), chunking=settings.chunking.model_dump(),
        milvus={"uri": milvus_uri}, llm={"base_url": ollama_url}, app={"data_dir": str(data_dir)},
        kb={"name": "compose_kb"},
    )


def test_ingest_search_and_ask_through_http_uris(settings: Settings, milvus_server: str, tmp_path: Path) -> None:
    with OllamaTestServer(ChatBehaviour(reply="Leave is fifteen days a year [1].")) as ollama:
        stack = compose_settings(settings, milvus_server, ollama.url, tmp_path / "data")
        assert stack.milvus.uri.startswith("http://") and stack.llm.base_url.startswith("http://")
        env = {"RAG_CONFIG": str(DOCKER_CONFIG)}

        ingested = run_cli([str(EXAMPLES)], stack, extra_env=env)
        assert ingested.returncode == 0, ingested.stderr
        listing = run_cli(["list"], stack, extra_env=env)
        assert "15 documents" in listing.stdout

        found = run_cli(["search", "年假有几天", "--json", "--top-k", "3"], stack, program="rag", extra_env=env)
        assert found.returncode == 0, found.stderr
        documents = json.loads(found.stdout)["documents"]
        assert len(documents) == 3 and all(d["scores"]["final"] is not None for d in documents)

        answered = run_cli(["ask", "年假有几天？"], stack, program="rag", extra_env=env)
        assert answered.returncode == 0, answered.stderr
        assert "Leave is fifteen days a year [1]." in answered.stdout
        [chat] = ollama.chat_requests()
        assert "[1]" in json.dumps(chat["messages"], ensure_ascii=False)
