"""POST /retrieval: Dify's External Knowledge API, so that a Dify app can use a ragscope knowledge base.

Request: ``knowledge_id`` (the knowledge base), ``query``, ``retrieval_setting`` {``top_k``, ``score_threshold``}
and optionally ``metadata_condition`` {``logical_operator``, ``conditions``}; ``Authorization: Bearer KEY`` when
the server has api.keys. Response: ``{"records": [{"content", "score", "title", "metadata"}]}`` where ``score`` is
our ``final`` score (``score_threshold`` is our min_score) and ``metadata`` holds the other scores and where the
chunk comes from. Errors: ``{"error_code", "error_msg"}``: 1001 invalid Authorization header, 1002 authorization
failed, 2001 the knowledge base does not exist (Dify's codes); otherwise the HTTP status as the code.

Conditions ragscope can apply: ``is`` / ``=`` on a stored metadata field or on ``source``, ``start with`` on
``source`` (a folder), joined by ``and``; any other is refused with a message rather than ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import key_problem
from api.errors import status_of
from api.retrieval import retrieve
from rag.errors import InvalidInputError, KnowledgeBaseNotFoundError, RagError

PATH = "/retrieval"
INVALID_AUTH_HEADER, AUTH_FAILED, KB_NOT_FOUND = 1001, 1002, 2001
EQUALS = ("is", "=")
SOURCE_FIELDS = ("source", "doc_id")

router = APIRouter()


class RetrievalSetting(BaseModel):
    top_k: int = Field(ge=1, description="Maximum number of records.")
    score_threshold: float = Field(0.0, description="Minimum score (our final); 0.0 when Dify's threshold is off.")


class Condition(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | list[str]
    comparison_operator: str
    value: str | int | float | bool | list[str] | None = None


class MetadataCondition(BaseModel):
    logical_operator: Literal["and", "or"] = "and"
    conditions: list[Condition] = Field(default_factory=list)


class DifyRetrievalRequest(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"knowledge_id": "default", "query": "How many days per week may employees work remotely?",
         "retrieval_setting": {"top_k": 2, "score_threshold": 0.5}},
    ]})

    knowledge_id: str
    query: str
    retrieval_setting: RetrievalSetting
    metadata_condition: MetadataCondition | None = None


def dify_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "error_msg": message}, status_code=status)


def filters_of(condition: MetadataCondition | None) -> dict[str, Any] | None:
    """Dify's metadata condition as ragscope search filters (see the module docstring)."""
    if condition is None or not condition.conditions:
        return None
    if condition.logical_operator == "or" and len(condition.conditions) > 1:
        raise InvalidInputError("metadata_condition with logical_operator `or` is not supported; use `and`.")
    filters: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for item in condition.conditions:
        operator = item.comparison_operator.strip()
        for name in [item.name] if isinstance(item.name, str) else item.name:
            if isinstance(item.value, list) or item.value is None:
                raise InvalidInputError(f"metadata condition on {name!r}: a single value is needed for `{operator}`.")
            if name == "source" and operator == "start with":
                filters["source_prefix"] = str(item.value)
            elif name in SOURCE_FIELDS and operator in EQUALS:
                filters["source"] = str(item.value)
            elif operator in EQUALS:
                metadata[name] = item.value
            else:
                raise InvalidInputError(
                    f"metadata condition `{name} {operator}` is not supported: use `is` or `=` on a metadata field "
                    "or on source, or `start with` on source."
                )
    if metadata:
        filters["metadata"] = metadata
    return filters


def record(document: dict[str, Any]) -> dict[str, Any]:
    """One chunk of a retrieval as a Dify record: score = final, the rest in metadata (always an object)."""
    meta = {key: value for key, value in document.items() if key not in ("text", "metadata")}
    for key, value in (document.get("metadata") or {}).items():  # the stored metadata, e.g. file_type
        meta[f"meta_{key}" if key in meta else key] = value
    source = str(document.get("source") or "")
    return {"content": document["text"], "score": document["scores"]["final"],
            "title": document.get("title") or source.rsplit("/", 1)[-1] or source, "metadata": meta}


@router.post(PATH, summary="Dify External Knowledge API: records with score = our final score")
def dify_retrieval(body: DifyRetrievalRequest, request: Request) -> Any:
    services = request.app.state.services
    problem = key_problem(services.settings.api, request.headers.get("authorization"))
    if problem in ("missing", "malformed"):
        return dify_error(401, INVALID_AUTH_HEADER, "Invalid Authorization header format. Expected 'Bearer <api-key>' "
                                                    "format.")
    if problem == "wrong":
        return dify_error(403, AUTH_FAILED, "Authorization failed: the API key is not one of the server's api.keys.")
    try:
        result = retrieve(services, body.query, kb=body.knowledge_id, top_k=body.retrieval_setting.top_k,
                          min_score=body.retrieval_setting.score_threshold,
                          filters=filters_of(body.metadata_condition))
    except KnowledgeBaseNotFoundError as exc:
        return dify_error(404, KB_NOT_FOUND, f"The knowledge does not exist: {exc}")
    except RagError as exc:
        status, _ = status_of(exc)
        return dify_error(status, status, str(exc))
    return {"records": [record(doc) for doc in result.to_dict()["documents"]]}
