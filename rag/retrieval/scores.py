"""The scores of a query against a chunk, computed exactly as FlagEmbedding's ``BGEM3FlagModel`` does.

Pure functions on numpy arrays and ``{token_id: weight}`` dicts; no model, no database. What each score
means is explained in :mod:`rag.retrieval.retriever`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from rag.config import WeightSettings
from rag.errors import InvalidInputError

SCORE_NAMES = ("dense", "sparse", "colbert", "rerank")


def dense_score(query: np.ndarray, chunk: np.ndarray) -> float:
    """Inner product of two L2-normalised dense vectors, i.e. their cosine similarity (-1..1)."""
    return float(np.dot(np.asarray(query, np.float64), np.asarray(chunk, np.float64)))


def dense_scores(query: np.ndarray, chunks: np.ndarray) -> np.ndarray:
    """``dense_score`` of ``query`` against each row of ``chunks`` (n, dim)."""
    if len(chunks) == 0:
        return np.zeros(0, np.float64)
    return np.asarray(chunks, np.float64) @ np.asarray(query, np.float64)


def lexical_score(query_sparse: Mapping[int, float], chunk_sparse: Mapping[int, float]) -> float:
    """Sum over the tokens both texts contain of query weight x chunk weight (bge-m3's lexical matching score).

    Equal to ``BGEM3FlagModel.compute_lexical_matching_score``; 0 when no token is shared.
    """
    total = 0.0
    for token, weight in query_sparse.items():
        other = chunk_sparse.get(token)
        if other is not None:
            total += float(weight) * float(other)
    return total


def colbert_score(query_vecs: np.ndarray, chunk_vecs: np.ndarray) -> float:
    """ColBERT late interaction: for each query token the best-matching chunk token's inner product, averaged.

    Equal to ``BGEM3FlagModel.colbert_score``: sum over query tokens of the max over chunk tokens, divided
    by the number of query tokens. 0 when either side has no token vectors.
    """
    q = np.asarray(query_vecs, np.float64)
    p = np.asarray(chunk_vecs, np.float64)
    if q.shape[0] == 0 or p.shape[0] == 0:
        return 0.0
    return float((q @ p.T).max(axis=1).sum() / q.shape[0])


def weighted_hybrid(scores: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    """sum(w_i * s_i) / sum(w_i) over the scores present (not None); None when their weights sum to 0."""
    present = [(weights.get(name, 0.0), value) for name, value in scores.items() if value is not None]
    total_weight = sum(w for w, _ in present)
    if total_weight <= 0:
        return None
    return sum(w * s for w, s in present) / total_weight


def resolve_weights(value: WeightSettings | Mapping[str, float] | None) -> dict[str, float]:
    """Weights as {"dense", "sparse", "colbert"} (+ "rerank" when set); a partial mapping is completed with the
    defaults."""
    if value is None:
        return WeightSettings().model_dump()
    if isinstance(value, WeightSettings):
        return value.model_dump()
    unknown = set(value) - set(SCORE_NAMES)
    if unknown:
        raise InvalidInputError(
            f"unknown weight(s) {', '.join(sorted(unknown))}; use dense, sparse, colbert and rerank."
        )
    merged = {**WeightSettings().model_dump(), **{k: float(v) for k, v in value.items() if v is not None}}
    if any(not v >= 0 for v in merged.values()):
        raise InvalidInputError(f"weights must be numbers of 0 or more, got {merged}.")
    return merged


def rrf_score(ranks: Iterable[int | None], k: int = 60) -> float:
    """Reciprocal rank fusion: sum over the lists a chunk appears in of 1 / (k + rank), ranks 1-based."""
    return sum(1.0 / (k + rank) for rank in ranks if rank is not None)


def hybrid_formula(
    weights: Mapping[str, float], present: Iterable[str] = ("dense", "sparse"), *, name: str = "hybrid"
) -> str:
    """The weighted formula as text, e.g. ``hybrid = (1.0 x dense + 0.3 x sparse) / 1.3``."""
    names = list(present)
    terms = " + ".join(f"{_num(weights.get(n, 0.0))} x {n}" for n in names)
    total = sum(weights.get(n, 0.0) for n in names)
    return f"{name} = ({terms}) / {_num(total)}"


def rrf_formula(k: int, lists: Iterable[str] = ("dense", "sparse")) -> str:
    """The RRF formula as text, e.g. ``rrf = 1/(60 + dense_rank) + 1/(60 + sparse_rank)``."""
    return "rrf = " + " + ".join(f"1/({k} + {name}_rank)" for name in lists)


def _num(value: float) -> str:
    return f"{value:.4g}" if value != int(value) else f"{value:.1f}"


def matched_terms(
    query_sparse: Mapping[int, float], chunk_sparse: Mapping[int, float], tokenizer: Any
) -> list[dict[str, Any]]:
    """The tokens the query shares with the chunk, each with its share of the sparse score, largest first.

    Each item: ``term`` (the token decoded to text), ``token_id``, ``query_weight``, ``chunk_weight`` and
    ``contribution`` = query_weight x chunk_weight. The contributions sum to ``lexical_score``.
    """
    terms = []
    for token, q_weight in query_sparse.items():
        c_weight = chunk_sparse.get(token)
        if c_weight is None:
            continue
        token_id = int(token)
        terms.append({
            "term": decode_token(tokenizer, token_id), "token_id": token_id, "query_weight": float(q_weight),
            "chunk_weight": float(c_weight), "contribution": float(q_weight) * float(c_weight),
        })
    terms.sort(key=lambda t: (-t["contribution"], t["token_id"]))
    return terms


def decode_token(tokenizer: Any, token_id: int) -> str:
    """One token as text, as FlagEmbedding's ``convert_id_to_token`` decodes it, without surrounding spaces."""
    text = tokenizer.decode([token_id]).strip()
    return text or tokenizer.convert_ids_to_tokens(token_id)
