"""The score model without a model or a database: the fusion rule, its formulas, and the typed scores/provenance."""

from __future__ import annotations

import pytest

from cli.evaluate import MODES as EVAL_MODES
from rag.config import FUSIONS, MODES, RetrievalSettings
from rag.errors import InvalidInputError
from rag.retrieval import Provenance, Ranks, ScoreFusion, Scores
from ui.state import MODES as SIDEBAR_MODES

W = {"dense": 1.0, "sparse": 0.3, "colbert": 1.0}


def chunk(colbert: float | None = None, ranks: Ranks | None = None) -> Scores:
    return Scores(dense=0.8, sparse=2.0, colbert=colbert, ranks=ranks or Ranks(dense=2, sparse=5))


def test_final_follows_mode_fusion_and_colbert() -> None:
    def final(mode: str, fusion: str, scores: Scores) -> float:
        return ScoreFusion(mode, fusion, W, colbert=scores.colbert is not None).fuse(scores).final  # type: ignore[arg-type]

    assert final("dense", "weighted", chunk()) == 0.8 and final("dense", "rrf", chunk()) == 0.8
    assert final("sparse", "rrf", chunk()) == 2.0
    assert final("hybrid", "weighted", chunk()) == pytest.approx((0.8 + 0.6) / 1.3)
    assert final("hybrid", "rrf", chunk()) == pytest.approx(1 / 62 + 1 / 65)
    reranked = Ranks(dense=2, sparse=None, colbert=1)
    assert final("hybrid", "rrf", chunk(0.5, reranked)) == pytest.approx(1 / 62 + 1 / 61)
    assert final("hybrid", "weighted", chunk(0.5)) == pytest.approx((0.8 + 0.6 + 0.5) / 2.3)
    assert final("dense", "weighted", chunk(0.5)) == pytest.approx((0.8 + 0.5) / 2.0)
    assert final("sparse", "weighted", chunk(0.5)) == pytest.approx((0.6 + 0.5) / 1.3)
    # a chunk outside the rerank set (no colbert) of a reranked search: the rule without colbert
    assert ScoreFusion("dense", "weighted", W, colbert=True).fuse(chunk()).final == 0.8


def test_fuse_fills_hybrid_rrf_and_the_settings() -> None:
    scores = ScoreFusion("dense", "weighted", {"dense": 2.0}, rrf_k=10).fuse(chunk())
    assert scores.hybrid == pytest.approx((2 * 0.8 + 0.3 * 2.0) / 2.3)  # partial weights: the rest are defaults
    assert scores.rrf == pytest.approx(1 / 12 + 1 / 15)
    assert (scores.mode, scores.fusion, scores.weights) == ("dense", "weighted", {**W, "dense": 2.0})


def test_weights_that_leave_final_undefined_are_refused() -> None:
    zero = {"dense": 0.0, "sparse": 0.0, "colbert": 0.0}
    for mode, fusion, colbert, names in (("hybrid", "weighted", False, "dense and sparse"),
                                         ("hybrid", "weighted", True, "dense and sparse and colbert"),
                                         ("sparse", "rrf", True, "sparse and colbert")):
        settings = RetrievalSettings(mode=mode, fusion=fusion, colbert_rerank=colbert, weights=zero)
        with pytest.raises(InvalidInputError, match=f"weights of {names} are all 0"):
            ScoreFusion.from_settings(settings)
    for mode, fusion in (("hybrid", "rrf"), ("dense", "weighted"), ("sparse", "weighted")):  # no weight used
        ScoreFusion.from_settings(RetrievalSettings(mode=mode, fusion=fusion, weights=zero))
    with pytest.raises(InvalidInputError, match="fusion must be one of weighted, rrf"):
        ScoreFusion("hybrid", "max", W)  # type: ignore[arg-type]


def test_formula_and_the_chunks_numbers() -> None:
    weighted = ScoreFusion("hybrid", "weighted", W)
    scores = weighted.fuse(chunk())
    assert weighted.formula() == "final = hybrid = (1.0 x dense + 0.3 x sparse) / 1.3"
    assert weighted.worked(scores) == f"final = (1 x 0.8000 + 0.3 x 2.0000) / 1.3 = {(0.8 + 0.6) / 1.3:.4f}"
    rrf = ScoreFusion("hybrid", "rrf", W, colbert=True, rrf_k=10)
    reranked = rrf.fuse(chunk(0.5, Ranks(dense=None, sparse=4, colbert=2)))
    assert rrf.formula() == "final = rrf = 1/(10 + dense_rank) + 1/(10 + sparse_rank) + 1/(10 + colbert_rank)"
    assert rrf.worked(reranked) == f"final = 1/(10 + 4) + 1/(10 + 2) = {1 / 14 + 1 / 12:.4f}"
    dense = ScoreFusion("dense", "rrf", W)
    assert (dense.formula(), dense.worked(dense.fuse(chunk()))) == ("final = dense", "final = dense = 0.8000")
    lines = ScoreFusion.of(reranked, 10).explain(reranked)
    assert lines == [
        rrf.formula(), "hybrid = (1.0 x dense + 0.3 x sparse + 1.0 x colbert) / 2.3",
        f"hybrid = (1 x 0.8000 + 0.3 x 2.0000 + 1 x 0.5000) / 2.3 = {(0.8 + 0.6 + 0.5) / 2.3:.4f}",
        f"rrf = 1/(10 + 4) + 1/(10 + 2) = {1 / 14 + 1 / 12:.4f}   sparse_rank = 4, colbert_rank = 2",
        rrf.worked(reranked),
    ]


def test_scores_and_provenance_round_trip_through_metadata() -> None:
    scores = ScoreFusion("hybrid", "rrf", W, colbert=True).fuse(chunk(0.5, Ranks(dense=1, sparse=None, colbert=3)))
    flat = scores.to_metadata()
    assert list(flat) == ["dense", "sparse", "colbert", "hybrid", "rrf", "dense_rank", "sparse_rank", "colbert_rank",
                          "final", "mode", "fusion", "weights"]
    assert (flat["dense_rank"], flat["sparse_rank"], flat["colbert_rank"]) == (1, None, 3)
    assert Scores.from_metadata({"scores": flat}) == scores and Scores.from_dict(flat) == scores
    origin = Provenance(source="a.pdf", doc_id="a.pdf", chunk_index=4, title="A", page=2, heading=None)
    assert Provenance.from_metadata({"id": "x", **origin.to_metadata(), "rank": 1}) == origin
    row = {"source": "b.md", "doc_id": "b.md", "chunk_index": 0, "title": "B", "metadata": {"heading": "B > Install"}}
    assert Provenance.from_row(row) == Provenance("b.md", "b.md", 0, "B", None, "B > Install")


def test_one_vocabulary_for_modes_and_fusions() -> None:
    assert MODES == ("dense", "sparse", "hybrid") and FUSIONS == ("weighted", "rrf")
    assert sorted(SIDEBAR_MODES) == sorted(MODES) and SIDEBAR_MODES[0] == RetrievalSettings().mode
    assert {mode for mode, _ in EVAL_MODES.values()} == set(MODES)


def reranked(logit: float = 1.5, rank: int = 2) -> Scores:
    from rag.rerank import sigmoid

    return Scores(dense=0.8, sparse=2.0, rerank=sigmoid(logit), rerank_raw=logit,
                  ranks=Ranks(dense=2, sparse=5, rerank=rank))


def test_the_cross_encoders_normalised_score_enters_final_and_the_formula_says_so() -> None:
    rule = ScoreFusion.from_settings(RetrievalSettings(rerank="cross-encoder"))
    assert rule.rerank and not rule.colbert and rule.weights["rerank"] == 1.0
    scores = rule.fuse(reranked())
    assert scores.rerank == pytest.approx(1 / (1 + 2.718281828459045 ** -1.5))
    assert scores.final == scores.hybrid == pytest.approx((0.8 + 0.6 + scores.rerank) / 2.3)
    assert rule.formula() == ("final = hybrid = (1.0 x dense + 0.3 x sparse + 1.0 x rerank) / 2.3"
                              "   (rerank = sigmoid(cross-encoder logit), 0..1)")
    lines = rule.explain(scores)
    assert f"rerank = sigmoid(1.5000) = {scores.rerank:.4f}   rerank_rank = 2" in lines
    assert lines[-1] == f"final = (1 x 0.8000 + 0.3 x 2.0000 + 1 x {scores.rerank:.4f}) / 2.3 = {scores.final:.4f}"
    rrf = ScoreFusion("hybrid", "rrf", W, rerank=True).fuse(reranked())
    assert rrf.final == pytest.approx(1 / 62 + 1 / 65 + 1 / 62)
    sparse = ScoreFusion("sparse", "weighted", {"rerank": 3.0}, rerank=True).fuse(reranked())
    assert sparse.final == pytest.approx((0.3 * 2.0 + 3.0 * (sparse.rerank or 0.0)) / 3.3)
    # outside the rerank set: the rule without rerank; the raw logit never enters final
    assert rule.fuse(chunk()).final == pytest.approx((0.8 + 0.6) / 1.3)
    assert ScoreFusion.of(scores).formula() == rule.formula()
    with pytest.raises(InvalidInputError, match="not both"):
        ScoreFusion("hybrid", "weighted", W, colbert=True, rerank=True)


def test_rerank_scores_round_trip_and_appear_only_on_reranked_chunks() -> None:
    scores = ScoreFusion("hybrid", "weighted", W, rerank=True).fuse(reranked())
    flat = scores.to_metadata()
    assert list(flat) == ["dense", "sparse", "colbert", "rerank", "rerank_raw", "hybrid", "rrf", "dense_rank",
                          "sparse_rank", "colbert_rank", "rerank_rank", "final", "mode", "fusion", "weights"]
    assert Scores.from_metadata({"scores": flat}) == scores and scores.value("rerank_raw") == 1.5
    assert "rerank" not in ScoreFusion("hybrid", "weighted", W, rerank=True).fuse(chunk()).to_metadata()
