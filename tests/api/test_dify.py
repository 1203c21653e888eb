"""POST /retrieval against Dify's External Knowledge API documentation (docs.dify.ai, "External Knowledge API"):
its example request, its response shape (records of content, score, title, metadata as an object), its error shape
(error_code / error_msg) and codes 1001 (invalid Authorization header), 1002 (authorization failed), 2001 (the
knowledge does not exist)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.config import Settings
from rag.encoder import Encoder
from tests.api.conftest import KB, KEY, QUESTION, reference_search, with_sections


def documented_request(**changes: Any) -> dict[str, Any]:
    """The request of Dify's "Request Syntax" example, aimed at the demo knowledge base."""
    return {"knowledge_id": KB, "query": QUESTION, "retrieval_setting": {"top_k": 2, "score_threshold": 0.5},
            **changes}


@pytest.fixture
def keyed(api_settings: Settings, make_client: Callable[[Settings], TestClient]) -> TestClient:
    return make_client(with_sections(api_settings, api={"keys": [KEY]}))


def bearer(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_documented_request_gets_documented_records(keyed: TestClient, demo_kb: Settings, encoder: Encoder) -> None:
    response = keyed.post("/retrieval", json=documented_request(), headers=bearer())
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    records = response.json()["records"]
    reference = reference_search(demo_kb, encoder, QUESTION, top_k=2, min_score=0.5)["documents"]
    assert 0 < len(records) <= 2 and len(records) == len(reference)
    for record, doc in zip(records, reference, strict=True):
        assert set(record) == {"content", "score", "title", "metadata"}
        assert isinstance(record["content"], str) and isinstance(record["title"], str) and record["title"]
        assert isinstance(record["metadata"], dict)  # Dify fails on a null metadata
        assert record["content"] == doc["text"]
        assert record["score"] == pytest.approx(doc["scores"]["final"], abs=1e-9) and record["score"] >= 0.5
        scores = record["metadata"]["scores"]
        assert scores["dense"] == pytest.approx(doc["scores"]["dense"]) and "sparse" in scores
        assert record["metadata"]["source"] == doc["source"]


def test_threshold_above_every_score_gives_empty_records(keyed: TestClient) -> None:
    body = documented_request(retrieval_setting={"top_k": 5, "score_threshold": 0.999})
    response = keyed.post("/retrieval", json=body, headers=bearer())
    assert response.status_code == 200 and response.json() == {"records": []}


@pytest.mark.parametrize(("headers", "status", "code"), [
    ({}, 401, 1001),
    ({"Authorization": KEY}, 401, 1001),
    ({"Authorization": "Basic abc"}, 401, 1001),
    ({"Authorization": "Bearer wrong-key"}, 403, 1002),
])
def test_auth_errors_use_difys_codes(keyed: TestClient, headers: dict[str, str], status: int, code: int) -> None:
    response = keyed.post("/retrieval", json=documented_request(), headers=headers)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error_code", "error_msg"} and body["error_code"] == code and body["error_msg"]


def test_without_keys_on_loopback_any_key_is_accepted(client: TestClient) -> None:
    """Dify always sends a key; a loopback server without api.keys checks none."""
    assert client.post("/retrieval", json=documented_request(), headers=bearer("anything")).status_code == 200


def test_unknown_knowledge_base_is_2001(keyed: TestClient) -> None:
    response = keyed.post("/retrieval", json=documented_request(knowledge_id="AAA-BBB-CCC"), headers=bearer())
    assert response.status_code == 404
    assert response.json()["error_code"] == 2001 and "AAA-BBB-CCC" in response.json()["error_msg"]


def test_bad_bodies_are_400_in_difys_shape(keyed: TestClient) -> None:
    response = keyed.post("/retrieval", json={"knowledge_id": KB, "query": QUESTION}, headers=bearer())
    assert response.status_code == 400
    assert response.json()["error_code"] == 400 and "retrieval_setting" in response.json()["error_msg"]


def test_metadata_conditions_filter_or_are_refused(keyed: TestClient) -> None:
    first = keyed.post("/retrieval", json=documented_request(
        retrieval_setting={"top_k": 5, "score_threshold": 0.0}), headers=bearer()).json()["records"]
    source = first[-1]["metadata"]["source"]
    condition = {"logical_operator": "and",
                 "conditions": [{"name": "source", "comparison_operator": "is", "value": source}]}
    filtered = keyed.post("/retrieval", json=documented_request(
        retrieval_setting={"top_k": 5, "score_threshold": 0.0}, metadata_condition=condition), headers=bearer())
    records = filtered.json()["records"]
    assert records and {r["metadata"]["source"] for r in records} == {source}

    folder = {"conditions": [{"name": ["source"], "comparison_operator": "start with", "value": "no-such-folder/"}]}
    empty = keyed.post("/retrieval", json=documented_request(metadata_condition=folder), headers=bearer())
    assert empty.status_code == 200 and empty.json() == {"records": []}

    unsupported = {"conditions": [{"name": "category", "comparison_operator": "contains", "value": "AI"}]}
    refused = keyed.post("/retrieval", json=documented_request(metadata_condition=unsupported), headers=bearer())
    assert refused.status_code == 400 and "not supported" in refused.json()["error_msg"]
    either = {"logical_operator": "or", "conditions": [condition["conditions"][0], condition["conditions"][0]]}
    refused = keyed.post("/retrieval", json=documented_request(metadata_condition=either), headers=bearer())
    assert refused.status_code == 400 and refused.json()["error_code"] == 400
