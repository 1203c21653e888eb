"""Score functions: equal to FlagEmbedding's own implementations; hybrid, RRF and the formula text."""

from __future__ import annotations

import numpy as np
import pytest

from rag.config import WeightSettings
from rag.encoder import Encoder
from rag.errors import InvalidInputError
from rag.retrieval.scores import (
    colbert_score,
    dense_score,
    dense_scores,
    hybrid_formula,
    lexical_score,
    matched_terms,
    resolve_weights,
    rrf_formula,
    rrf_score,
    weighted_hybrid,
)


def _random_sparse(rng: np.random.Generator, vocab: int, n: int) -> dict[int, float]:
    ids = rng.choice(vocab, size=n, replace=False)
    return {int(i): float(w) for i, w in zip(ids, rng.random(n).astype(np.float32), strict=True)}


def test_lexical_score_equals_flagembedding(encoder: Encoder) -> None:
    rng = np.random.default_rng(1)
    flag = encoder.flag_model  # type: ignore[attr-defined]
    for _ in range(20):
        q, c = _random_sparse(rng, 60, 12), _random_sparse(rng, 60, 30)
        theirs = flag.compute_lexical_matching_score({str(k): v for k, v in q.items()},
                                                     {str(k): v for k, v in c.items()})
        assert lexical_score(q, c) == pytest.approx(float(theirs), abs=1e-6)
    assert lexical_score({1: 0.5}, {2: 0.5}) == 0.0
    assert lexical_score({}, {1: 1.0}) == 0.0


def test_colbert_and_dense_equal_flagembedding(encoder: Encoder) -> None:
    rng = np.random.default_rng(2)
    flag = encoder.flag_model  # type: ignore[attr-defined]
    for n_q, n_p in [(1, 1), (3, 17), (9, 4)]:
        q = rng.standard_normal((n_q, 8)).astype(np.float32)
        p = rng.standard_normal((n_p, 8)).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        p /= np.linalg.norm(p, axis=1, keepdims=True)
        assert colbert_score(q, p) == pytest.approx(float(flag.colbert_score(q, p)), abs=1e-6)
        assert dense_score(q[0], p[0]) == pytest.approx(float(q[0] @ p[0]), abs=1e-6)
        np.testing.assert_allclose(dense_scores(q[0], p), p @ q[0], atol=1e-6)
    assert colbert_score(np.zeros((0, 8)), np.ones((2, 8))) == 0.0
    assert dense_scores(np.ones(4), np.zeros((0, 4))).shape == (0,)


def test_weighted_hybrid_over_present_scores() -> None:
    w = {"dense": 1.0, "sparse": 0.3, "colbert": 1.0}
    assert weighted_hybrid({"dense": 0.8, "sparse": 0.5}, w) == pytest.approx((0.8 + 0.15) / 1.3)
    assert weighted_hybrid({"dense": 0.8, "sparse": 0.5, "colbert": None}, w) == pytest.approx((0.8 + 0.15) / 1.3)
    assert weighted_hybrid({"dense": 0.8, "sparse": 0.5, "colbert": 0.6}, w) == pytest.approx((0.8 + 0.15 + 0.6) / 2.3)
    assert weighted_hybrid({"dense": 0.8}, {"dense": 0.0}) is None


def test_rrf() -> None:
    assert rrf_score([1, 1], 60) == pytest.approx(2 / 61)
    assert rrf_score([3, None], 60) == pytest.approx(1 / 63)
    assert rrf_score([None, None], 60) == 0.0
    assert rrf_score([2, 5, 1], 10) == pytest.approx(1 / 12 + 1 / 15 + 1 / 11)


def test_formula_text() -> None:
    assert hybrid_formula({"dense": 1.0, "sparse": 0.3}) == "hybrid = (1.0 x dense + 0.3 x sparse) / 1.3"
    assert (hybrid_formula({"dense": 1.0, "sparse": 0.3, "colbert": 1.0}, ("dense", "sparse", "colbert"))
            == "hybrid = (1.0 x dense + 0.3 x sparse + 1.0 x colbert) / 2.3")
    assert rrf_formula(60) == "rrf = 1/(60 + dense_rank) + 1/(60 + sparse_rank)"


def test_matched_terms_sum_order_and_text(encoder: Encoder) -> None:
    tok = encoder.tokenizer
    ids = {word: tok(word, add_special_tokens=False)["input_ids"][-1] for word in ("员工", "年假", "remote")}
    query = {ids["员工"]: 0.9, ids["年假"]: 0.4, ids["remote"]: 0.2, 7: 0.1}
    chunk = {ids["员工"]: 0.5, ids["年假"]: 1.5, 9: 0.3}
    terms = matched_terms(query, chunk, tok)
    assert [t["token_id"] for t in terms] == [ids["年假"], ids["员工"]]  # 0.6 before 0.45
    assert sum(t["contribution"] for t in terms) == pytest.approx(lexical_score(query, chunk))
    assert terms[0]["query_weight"] == 0.4 and terms[0]["chunk_weight"] == 1.5
    assert all(t["term"] and t["term"] == tok.decode([t["token_id"]]).strip() for t in terms)
    assert matched_terms({1: 1.0}, {2: 1.0}, tok) == []


def test_resolve_weights() -> None:
    assert resolve_weights(None) == {"dense": 1.0, "sparse": 0.3, "colbert": 1.0}
    assert resolve_weights({"sparse": 1}) == {"dense": 1.0, "sparse": 1.0, "colbert": 1.0}
    assert resolve_weights(WeightSettings(dense=0.5)) == {"dense": 0.5, "sparse": 0.3, "colbert": 1.0}
    with pytest.raises(InvalidInputError, match="unknown weight"):
        resolve_weights({"bm25": 1.0})
    with pytest.raises(InvalidInputError, match="0 or more"):
        resolve_weights({"dense": -1.0})
