"""`rag serve` for real: a subprocess with uvicorn on a free port, a knowledge base on a `milvus-lite server`, the
suite's Ollama-protocol server as the LLM; the official `openai` client and LangChain's ChatOpenAI against it,
concurrent requests, and the refusals that happen before it listens."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from ingest import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.store import MilvusStore
from tests.api.conftest import KEY, QUESTION, REPLY
from tests.api.sse import sse_events, streamed_text
from tests.conftest import EXAMPLES, cli_env, run_cli
from tests.support.ollama_server import ChatBehaviour, OllamaTestServer, free_port
from tests.support.processes import answers, serving

KB = "served_kb"
MODEL = f"ragscope/{KB}"
QUERIES = [QUESTION, "年假有多少天？", "How does the sync engine resolve conflicts?", "How do I cancel my plan?",
           "remote work approval"]


@dataclass
class Served:
    url: str
    settings: Settings
    ollama: OllamaTestServer


@pytest.fixture(scope="module")
def served(make_settings: Callable[..., Settings], encoder: Encoder, milvus_server: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`rag serve` on 127.0.0.1 with api.keys set, over the demo knowledge base in a milvus-lite server."""
    with OllamaTestServer(ChatBehaviour(reply=REPLY)) as ollama:
        tmp = tmp_path_factory.mktemp("served")
        settings = make_settings(tmp, milvus={"uri": milvus_server}, kb={"name": KB}, retrieval={"top_k": 3},
                                 llm={"base_url": ollama.url}, api={"keys": [KEY]})
        with MilvusStore(settings.milvus) as store:
            assert not IngestPipeline(settings, encoder, store).run([EXAMPLES], kb=KB).failed
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        try:
            with serving([str(Path(sys.executable).parent / "rag"), "serve", "--port", str(port)],
                         ready=lambda: answers(f"{url}/healthz"), what="rag serve", log=tmp / "serve.log",
                         env=cli_env(settings)):
                yield Served(url, settings, ollama)
        finally:
            with MilvusStore(settings.milvus) as store:
                if store.exists(KB):
                    store.drop(KB)


def openai_client(served: Served, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served.url}/v1", api_key=key, max_retries=0, timeout=60)


# --- the official openai client -----------------------------------------------------------------------------------


def test_openai_client_gets_the_answer_and_the_sources(served: Served) -> None:
    completion = openai_client(served).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    sources = (completion.model_extra or {})["sources"]
    assert [s["n"] for s in sources] == [1, 2, 3] and [s["cited"] for s in sources] == [True, True, False]
    assert all({"dense", "sparse", "hybrid", "final"} <= set(s["scores"]) for s in sources)


def test_openai_client_streams_the_answer_then_the_sources(served: Served) -> None:
    stream = openai_client(served).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    last = chunks[-1]
    assert last.choices == [] and len((last.model_extra or {})["sources"]) == 3


def test_openai_client_lists_the_knowledge_bases_as_models(served: Served) -> None:
    assert MODEL in [model.id for model in openai_client(served).models.list()]


def test_openai_client_without_the_right_key_is_refused(served: Served) -> None:
    with pytest.raises(openai.PermissionDeniedError, match="not valid"):
        openai_client(served, key="wrong").models.list()
    assert httpx.get(f"{served.url}/v1/models").status_code == 401
    assert httpx.get(f"{served.url}/healthz").status_code == 200


# --- LangChain ----------------------------------------------------------------------------------------------------


def test_langchain_chat_openai_works_against_it(served: Served) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=f"{served.url}/v1", api_key=KEY, model=MODEL, max_retries=0, timeout=60)
    assert llm.invoke(QUESTION).content == REPLY
    assert "".join(str(chunk.content) for chunk in llm.stream(QUESTION)) == REPLY


# --- concurrency --------------------------------------------------------------------------------------------------


def retrieval(client: httpx.Client, url: str, query: str) -> list[tuple[str, float]]:
    response = client.post(f"{url}/v1/retrieval", json={"query": query}, headers={"Authorization": f"Bearer {KEY}"})
    response.raise_for_status()
    return [(doc["id"], doc["scores"]["final"]) for doc in response.json()["documents"]]


def streamed_chat(client: httpx.Client, url: str, question: str) -> tuple[str, list[str]]:
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": question}]}
    response = client.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
    response.raise_for_status()
    events, done = sse_events(response.text)
    assert done
    return streamed_text(events), [s["id"] for s in events[-1]["sources"]]


def test_concurrent_requests_get_the_same_results_as_one_at_a_time(served: Served) -> None:
    served.ollama.behaviour.piece_delay_s = 0.01  # streams overlap in time
    queries = [QUERIES[i % len(QUERIES)] for i in range(20)]
    questions = QUERIES[:5]
    with httpx.Client(timeout=120) as client:
        alone = {q: retrieval(client, served.url, q) for q in QUERIES}
        chats_alone = {q: streamed_chat(client, served.url, q) for q in questions}
    with httpx.Client(timeout=120, limits=httpx.Limits(max_connections=25)) as client, \
            ThreadPoolExecutor(max_workers=25) as pool:
        searches = [pool.submit(retrieval, client, served.url, q) for q in queries]
        chats = [pool.submit(streamed_chat, client, served.url, q) for q in questions]
        together = [f.result() for f in searches]
        chats_together = [f.result() for f in chats]
    assert together == [alone[q] for q in queries]
    assert chats_together == [chats_alone[q] for q in questions]
    assert all(result for result in together) and all(text == REPLY for text, _ in chats_together)


# --- refusals before listening ------------------------------------------------------------------------------------


def no_key_settings(settings: Settings) -> dict[str, str]:
    env = cli_env(settings)
    env["RAG_API__KEYS"] = ""
    return env


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_non_loopback_without_a_key_is_refused(settings: Settings, host: str) -> None:
    result = subprocess.run([str(Path(sys.executable).parent / "rag"), "serve", "--host", host, "--port",
                             str(free_port())], env=no_key_settings(settings), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert f"refusing to listen on {host} without an API key" in result.stderr
    assert "RAG_API__KEYS" in result.stderr and "Traceback" not in result.stderr + result.stdout


def test_usage_errors_print_usage(settings: Settings) -> None:
    result = run_cli(["serve", "--port", "many"], settings, program="rag")
    assert result.returncode == 2 and "Usage:" in result.stderr and "Traceback" not in result.stderr


def test_keys_from_the_environment_allow_any_address(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.auth import check_bind
    from rag.config import load_settings

    monkeypatch.setenv("RAG_API__KEYS", "k1, k2")
    api = load_settings().api
    assert api.keys == ["k1", "k2"]
    check_bind(api, "0.0.0.0")  # does not raise
