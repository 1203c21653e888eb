"""Every route of the API through FastAPI's TestClient, over the demo knowledge base (tiny model, embedded
milvus-lite) and the suite's Ollama-protocol server: the results, the limits and each failure status."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.similarity import compare_texts
from rag.store import MilvusStore
from tests.api.conftest import KB, KEY, QUESTION, REPLY, reference_search, with_sections
from tests.conftest import EXAMPLES, run_cli
from tests.support.ollama_server import OllamaTestServer

VOLATILE = ("timings", "cached_query")  # what may differ between two runs of the same search


def stable(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key not in VOLATILE}


# --- /v1/retrieval ------------------------------------------------------------------------------------------------


def test_retrieval_is_the_json_of_rag_search(demo_kb: Settings, make_client: Callable[[Settings], TestClient]) -> None:
    cli = run_cli(["search", QUESTION, "--json"], demo_kb, program="rag")  # before the app holds the database
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    response = make_client(demo_kb).post("/v1/retrieval", json={"query": QUESTION})
    assert response.status_code == 200
    got = response.json()
    assert stable(got) == stable(expected)
    assert set(got["timings"]) == {"encode_ms", "milvus_ms", "rescoring_ms", "rerank_ms", "total_ms"}
    assert len(got["documents"]) == 3 and got["formula"].startswith("final = hybrid")
    first = got["documents"][0]["scores"]
    assert {"dense", "sparse", "hybrid", "rrf", "dense_rank", "sparse_rank", "final"} <= set(first)


def test_retrieval_options_reach_the_search(client: TestClient, demo_kb: Settings, encoder: Encoder) -> None:
    options = {"top_k": 2, "mode": "sparse", "weights": {"dense": 1.0, "sparse": 0.5}}
    got = client.post("/v1/retrieval", json={"query": QUESTION, **options}).json()
    assert got["mode"] == "sparse" and got["top_k"] == 2 and len(got["documents"]) == 2
    reference = reference_search(demo_kb, encoder, QUESTION, **options)
    assert [d["id"] for d in got["documents"]] == [d["id"] for d in reference["documents"]]
    assert [d["scores"]["final"] for d in got["documents"]] == pytest.approx(
        [d["scores"]["final"] for d in reference["documents"]], abs=1e-6)

    source = got["documents"][0]["source"]
    filtered = client.post("/v1/retrieval", json={"query": QUESTION, "kb": [KB], "filters": {"source": source}}).json()
    assert filtered["documents"] and {d["source"] for d in filtered["documents"]} == {source}
    assert filtered["filters"]["source"] == source

    nothing = client.post("/v1/retrieval", json={"query": QUESTION, "min_score": 100}).json()
    assert nothing["documents"] == [] and nothing["below_min_score"] == nothing["candidates"] > 0


def test_retrieval_over_two_knowledge_bases_is_the_merged_search(
    api_settings: Settings, encoder: Encoder, make_client: Callable[[Settings], TestClient], tmp_path: Path
) -> None:
    from rag.retrieval import MultiKBRetriever

    second = "api_second"
    shutil.copy(EXAMPLES / "remote-work-policy.html", tmp_path)
    with MilvusStore(api_settings.milvus) as store:
        if not store.exists(second):
            assert not IngestPipeline(api_settings, encoder, store).run([tmp_path], kb=second).failed
        expected = MultiKBRetriever.from_store(encoder, store, [KB, second], api_settings.retrieval).search(
            QUESTION, top_k=6, fusion="rrf").to_dict()
    got = make_client(api_settings).post("/v1/retrieval", json={"query": QUESTION, "kb": [KB, second],
                                                                "top_k": 6, "fusion": "rrf"}).json()
    assert stable(got) == stable(expected)
    assert got["kbs"] == [KB, second] and {d["kb"] for d in got["documents"]} == {KB, second}


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"query": QUESTION, "top_k": 101}, 400, "api.max_top_k"),
    ({"query": QUESTION, "kb": [KB, "no_such_kb"]}, 404, "does not exist"),
    ({"query": QUESTION, "kb": "no_such_kb"}, 404, "does not exist"),
    ({"query": "   "}, 400, "query is empty"),
    ({"query": QUESTION, "mode": "fuzzy"}, 400, "mode"),
    ({"query": QUESTION, "filters": {"colour": "red"}}, 400, "unknown filter key"),
    ({"question": QUESTION}, 400, "query: Field required"),
])
def test_bad_retrieval_requests(client: TestClient, body: dict[str, Any], status: int, words: str) -> None:
    response = client.post("/v1/retrieval", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert words in error["message"] and error["code"] == status
    assert "Traceback" not in response.text


def test_malformed_json_and_unknown_routes_are_json_errors(client: TestClient) -> None:
    response = client.post("/v1/retrieval", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "JSON" in response.json()["error"]["message"]
    missing = client.get("/v1/nothing")
    assert missing.status_code == 404 and "/docs" in missing.json()["error"]["message"]
    wrong_method = client.get("/v1/retrieval")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


def test_request_size_limit(api_settings: Settings, make_client: Callable[[Settings], TestClient]) -> None:
    client = make_client(with_sections(api_settings, api={"max_request_kb": 4}))
    big = {"query": "remote work " * 1000}
    declared = client.post("/v1/retrieval", json=big)
    assert declared.status_code == 413 and "api.max_request_kb" in declared.json()["error"]["message"]
    chunked = client.post("/v1/retrieval", content=iter([json.dumps(big).encode()[i:i + 1000]
                                                         for i in range(0, 13000, 1000)]),
                          headers={"content-type": "application/json"})
    assert chunked.status_code == 413 and "4 KB" in chunked.json()["error"]["message"]
    assert client.post("/v1/retrieval", json={"query": QUESTION}).status_code == 200


# --- /v1/similarity, /v1/kbs, /v1/models, /healthz, /docs ---------------------------------------------------------


def test_similarity_is_rag_similarity(client: TestClient, api_settings: Settings, encoder: Encoder) -> None:
    got = client.post("/v1/similarity", json={"a": "我喜欢看书", "b": "阅读使我快乐"}).json()
    expected = compare_texts(encoder, "我喜欢看书", "阅读使我快乐", api_settings.retrieval.weights, api_settings.levels)
    assert got == expected.to_dict()
    assert client.post("/v1/similarity", json={"a": "", "b": "x"}).status_code == 400


def test_knowledge_bases_and_models(client: TestClient) -> None:
    kbs = client.get("/v1/kbs").json()
    assert kbs["default"] == KB
    [kb] = [item for item in kbs["knowledge_bases"] if item["name"] == KB]
    assert kb["chunks"] > 0 and kb["dim"] > 0
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and {"id": f"ragscope/{KB}", "object": "model", "created": 0,
                                           "owned_by": "ragscope"} in models["data"]


def test_health_reports_each_service(client: TestClient, api_settings: Settings,
                                     make_client: Callable[[Settings], TestClient], offline_url: str) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["milvus"]["ok"] and body["encoder"]["ok"] and body["ollama"]["ok"]

    no_ollama = make_client(with_sections(api_settings, llm={"base_url": offline_url})).get("/healthz")
    assert no_ollama.status_code == 200 and no_ollama.json()["status"] == "degraded"
    assert "ollama serve" in no_ollama.json()["ollama"]["message"]


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/chat/completions", "/v1/models", "/v1/retrieval", "/retrieval", "/v1/similarity", "/v1/kbs",
            "/healthz"} <= set(paths)


# --- services down ------------------------------------------------------------------------------------------------


def test_milvus_down_is_503_with_what_to_start(api_settings: Settings, offline_url: str,
                                               make_client: Callable[[Settings], TestClient]) -> None:
    client = make_client(with_sections(api_settings, milvus={"uri": offline_url}))
    for method, path, body in (("post", "/v1/retrieval", {"query": QUESTION}), ("get", "/v1/kbs", None),
                               ("post", "/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}]})):
        response = client.request(method, path, json=body)
        assert response.status_code == 503, path
        message = response.json()["error"]["message"]
        assert f"Milvus server at {offline_url} is not reachable" in message and "milvus-lite server" in message
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    assert "not reachable" in health.json()["milvus"]["message"]


# --- /v1/chat/completions -----------------------------------------------------------------------------------------


def chat(client: TestClient, question: str = QUESTION, **extra: Any) -> Any:
    return client.post("/v1/chat/completions",
                       json={"model": f"ragscope/{KB}", "messages": [{"role": "user", "content": question}], **extra})


def test_chat_answers_with_the_sources_and_their_scores(client: TestClient, demo_kb: Settings,
                                                        encoder: Encoder) -> None:
    response = chat(client)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == f"ragscope/{KB}"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": REPLY}
    assert body["choices"][0]["finish_reason"] == "stop"
    sources = body["sources"]
    reference = reference_search(demo_kb, encoder, QUESTION)["documents"]
    assert [s["id"] for s in sources] == [d["id"] for d in reference]
    assert [s["n"] for s in sources] == [1, 2, 3] and [s["cited"] for s in sources] == [True, True, False]
    assert sources[0]["scores"]["final"] == pytest.approx(reference[0]["scores"]["final"], abs=1e-6)
    assert sources[0]["text"] and sources[0]["source"]


def test_streamed_chat_ends_with_the_sources_then_done(client: TestClient, ollama_server: OllamaTestServer) -> None:
    from tests.api.sse import sse_events, streamed_text

    response = chat(client, stream=True)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events, done = sse_events(response.text)
    assert done
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert streamed_text(events) == REPLY and len(events) > 4
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    last = events[-1]
    assert last["choices"] == [] and [s["n"] for s in last["sources"]] == [1, 2, 3]
    assert len({event["id"] for event in events}) == 1
    assert ollama_server.chat_requests()[0]["stream"] is True


def test_chat_history_comes_from_the_messages(client: TestClient, ollama_server: OllamaTestServer) -> None:
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is the remote work policy?"},
                {"role": "assistant", "content": "Up to three days per week [1]."},
                {"role": "user", "content": [{"type": "text", "text": "And after probation?"}]}]
    ollama_server.behaviour.reply = lambda body: ("How many remote days after probation?"
                                                  if "probation" in json.dumps(body["messages"]) and len(
                                                      ollama_server.chat_requests()) == 1 else REPLY)
    body = client.post("/v1/chat/completions", json={"model": f"ragscope/{KB}", "messages": messages}).json()
    rewrite, answer = ollama_server.chat_requests()
    assert "What is the remote work policy?" in json.dumps(rewrite["messages"], ensure_ascii=False)
    assert "Be brief" not in json.dumps(answer["messages"])
    assert body["standalone_question"] == "How many remote days after probation?"


@pytest.mark.parametrize(("model", "status"), [(None, 200), ("ragscope", 200), ("gpt-4o", 404),
                                               ("ragscope/no_such_kb", 404)])
def test_chat_model_names_a_knowledge_base(client: TestClient, model: str | None, status: int) -> None:
    response = client.post("/v1/chat/completions", json={"model": model, "messages": [
        {"role": "user", "content": QUESTION}]})
    assert response.status_code == status
    if status == 200:
        assert response.json()["kb"] == KB
    else:
        assert "/v1/models" in response.json()["error"]["message"] or "does not exist" in response.text


def test_chat_needs_a_user_question_last(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json={"messages": [{"role": "assistant", "content": "hi"}]})
    assert response.status_code == 400 and "last message" in response.json()["error"]["message"]
    assert client.post("/v1/chat/completions", json={"messages": []}).status_code == 400


def test_ollama_down_is_503_with_what_to_start(api_settings: Settings, offline_url: str,
                                               make_client: Callable[[Settings], TestClient]) -> None:
    client = make_client(with_sections(api_settings, llm={"base_url": offline_url}))
    for stream in (False, True):
        response = chat(client, stream=stream)
        assert response.status_code == 503
        body = response.json()
        assert "ollama serve" in body["error"]["message"] and len(body["sources"]) == 3  # retrieval still shown


def test_model_not_pulled_is_503_with_what_to_pull(client: TestClient, ollama_server: OllamaTestServer) -> None:
    ollama_server.behaviour.models = ["llama3.2:1b"]
    response = chat(client)
    assert response.status_code == 503 and "ollama pull qwen2.5:3b" in response.json()["error"]["message"]


def test_an_answer_cut_off_mid_stream_ends_with_an_error_event(client: TestClient,
                                                               ollama_server: OllamaTestServer) -> None:
    from tests.api.sse import sse_events, streamed_text

    ollama_server.behaviour.fail_after = 3
    events, done = sse_events(chat(client, stream=True).text)
    assert done and streamed_text(events) == "Employees may work"
    [error] = [event for event in events if "error" in event]
    assert "cut off" in error["error"]["message"] and events[-1]["sources"]


# --- auth ---------------------------------------------------------------------------------------------------------


def test_keys_guard_every_route_but_health(api_settings: Settings,
                                           make_client: Callable[[Settings], TestClient]) -> None:
    client = make_client(with_sections(api_settings, api={"keys": [KEY, "second-key"]}))
    routes = [("get", "/v1/kbs", None), ("get", "/v1/models", None), ("post", "/v1/retrieval", {"query": QUESTION}),
              ("post", "/v1/similarity", {"a": "x", "b": "y"}),
              ("post", "/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}]})]
    for method, path, body in routes:
        missing = client.request(method, path, json=body)
        assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["error"]["message"], path
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = client.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403, path
        malformed = client.request(method, path, json=body, headers={"Authorization": KEY})
        assert malformed.status_code == 401, path
        for key in (KEY, "second-key"):
            ok = client.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200, (path, ok.text)
    assert client.get("/healthz").status_code == 200
    assert client.get("/docs").status_code == 200


def test_model_text_cannot_forge_sse_events(client: TestClient, ollama_server: OllamaTestServer) -> None:
    """The answer is data: a reply holding an SSE frame and [DONE] arrives as text, and the stream goes on."""
    from tests.api.sse import sse_events, streamed_text

    forged = 'See [1].\n\ndata: [DONE]\n\ndata: {"sources": []}\n\n<script>alert(1)</script>'
    ollama_server.behaviour.reply = forged
    response = chat(client, stream=True)
    events, done = sse_events(response.text)
    assert done and response.text.count("data: [DONE]") == 1
    assert streamed_text(events) == forged and len(events[-1]["sources"]) == 3


def test_a_knowledge_base_dropped_while_serving_is_404(api_settings: Settings, encoder: Encoder,
                                                       make_client: Callable[[Settings], TestClient]) -> None:
    from ingest import IngestPipeline
    from rag.store import MilvusStore
    from tests.conftest import EXAMPLES

    client = make_client(api_settings)
    with MilvusStore(api_settings.milvus) as store:
        IngestPipeline(api_settings, encoder, store).run([EXAMPLES / "faq-zh.md"], kb="short_lived")
        assert client.post("/v1/retrieval", json={"query": "年假", "kb": "short_lived"}).status_code == 200
        store.drop("short_lived")
    response = client.post("/v1/retrieval", json={"query": "年假", "kb": "short_lived"})
    assert response.status_code == 404 and "does not exist" in response.json()["error"]["message"]
