"""Cross-encoder reranking in a search: scores equal FlagReranker's, order by final, min_score, lazy loading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from FlagEmbedding import FlagReranker

from rag.errors import ModelNotAvailableError
from rag.rerank import loaded_rerankers
from rag.retrieval import HybridRetriever, RetrievalResult, Scores
from tests.rag.test_retriever import QUERIES

NOTE = "   (rerank = sigmoid(cross-encoder logit), 0..1)"


@pytest.fixture(scope="module")
def reranking(make_retriever: Callable[..., HybridRetriever],
              tiny_reranker_dir: Path) -> Callable[..., HybridRetriever]:
    """A retriever that reranks with the tiny cross-encoder; keyword arguments are retrieval settings."""

    def make(**retrieval: Any) -> HybridRetriever:
        reranker = {"model": str(tiny_reranker_dir), "device": "cpu", **retrieval.pop("reranker", {})}
        return make_retriever(rerank="cross-encoder", reranker=reranker, **retrieval)

    return make


@pytest.fixture(scope="module")
def flag(tiny_reranker_dir: Path) -> FlagReranker:
    """The tiny model as users load bge-reranker-v2-m3."""
    return FlagReranker(str(tiny_reranker_dir), use_fp16=False, devices="cpu")


def scores_of(result: RetrievalResult) -> list[Scores]:
    return [Scores.from_metadata(d.metadata) for d in result.documents]


def test_every_rerank_score_equals_flag_reranker_and_final_orders(
    reranking: Callable[..., HybridRetriever], flag: FlagReranker
) -> None:
    retriever = reranking(rerank_candidates=4)
    for query in QUERIES[:3]:
        result = retriever.search(query, top_k=8)
        assert result.rerank == "cross-encoder" and not result.colbert
        assert result.formula == "final = hybrid = (1.0 x dense + 0.3 x sparse + 1.0 x rerank) / 2.3" + NOTE
        docs, scores = result.documents, scores_of(result)
        assert [s.rerank is not None for s in scores] == [True] * 4 + [False] * 4
        head = [d.page_content for d in docs[:4]]
        pairs = [(query, text) for text in head]
        assert [s.rerank_raw for s in scores[:4]] == pytest.approx(flag.compute_score(pairs), abs=1e-5)
        assert [s.rerank for s in scores[:4]] == pytest.approx(flag.compute_score(pairs, normalize=True), abs=1e-5)
        for s in scores[:4]:
            assert s.final == pytest.approx((s.dense + 0.3 * s.sparse + s.rerank) / 2.3, abs=1e-9)
            assert s.weights == {"dense": 1.0, "sparse": 0.3, "colbert": 1.0, "rerank": 1.0}
        for part in (scores[:4], scores[4:]):  # the reranked chunks first, each group in the order of final
            assert [s.final for s in part] == sorted((s.final for s in part), reverse=True)
        by_logit = sorted(scores[:4], key=lambda s: -(s.rerank_raw or 0.0))
        assert [s.ranks.rerank for s in by_logit] == [1, 2, 3, 4]
        assert all("rerank" not in d.metadata["scores"] for d in docs[4:])
        unreranked = retriever.search(query, top_k=8, rerank="none")
        ids = [d.metadata["id"] for d in unreranked.documents]
        assert {d.metadata["id"] for d in docs[:4]} == set(ids[:4])  # the best 4 candidates were reranked
        assert [d.metadata["id"] for d in docs[4:]] == ids[4:]  # the rest keep their order


def test_rrf_adds_the_cross_encoders_order_as_a_list(reranking: Callable[..., HybridRetriever]) -> None:
    result = reranking(fusion="rrf", rerank_candidates=3).search(QUERIES[1], top_k=5)
    assert result.formula == ("final = rrf = 1/(60 + dense_rank) + 1/(60 + sparse_rank) + 1/(60 + rerank_rank)"
                              "   (rerank_rank = place in the cross-encoder's order)")
    scores = scores_of(result)
    for s in scores:
        ranks = [s.ranks.dense, s.ranks.sparse, s.ranks.rerank]
        assert s.final == pytest.approx(sum(1 / (60 + r) for r in ranks if r is not None), abs=1e-12)
    assert sorted(s.ranks.rerank for s in scores[:3]) == [1, 2, 3] and scores[3].ranks.rerank is None


def test_dense_mode_and_the_rerank_weight(reranking: Callable[..., HybridRetriever]) -> None:
    dense = reranking(mode="dense", rerank_candidates=3).search(QUERIES[0], top_k=3)
    assert dense.formula == "final = dense+rerank = (1.0 x dense + 1.0 x rerank) / 2.0" + NOTE
    for s in scores_of(dense):
        assert s.final == pytest.approx((s.dense + (s.rerank or 0.0)) / 2, abs=1e-9)
    only = reranking(rerank_candidates=5, weights={"dense": 0.0, "sparse": 0.0, "rerank": 2.0})
    result = only.search(QUERIES[2], top_k=5)
    assert result.formula == "final = hybrid = (0.0 x dense + 0.0 x sparse + 2.0 x rerank) / 2.0" + NOTE
    scores = scores_of(result)
    assert [s.final for s in scores] == pytest.approx([s.rerank for s in scores], abs=1e-12)
    assert [s.ranks.rerank for s in scores] == [1, 2, 3, 4, 5]  # ordered by the cross-encoder alone


def test_min_score_applies_to_final(reranking: Callable[..., HybridRetriever]) -> None:
    retriever = reranking(rerank_candidates=6)
    everything = retriever.search(QUERIES[3], top_k=6)
    finals = [s.final for s in scores_of(everything)]
    floor = (finals[1] + finals[2]) / 2
    kept = retriever.search(QUERIES[3], top_k=6, min_score=floor)
    assert [s.final for s in scores_of(kept)] == finals[:2]
    assert kept.below_min_score == kept.candidates - 2


def test_no_cross_encoder_is_loaded_unless_a_search_reranks_with_it(
    make_retriever: Callable[..., HybridRetriever], tmp_path: Path
) -> None:
    nowhere = {"model": str(tmp_path / "no-reranker-here"), "device": "cpu"}
    loaded = list(loaded_rerankers())
    for rerank in ("none", "colbert"):
        result = make_retriever(rerank=rerank, reranker=nowhere, rerank_candidates=3).search(QUERIES[0])
        assert all(s.rerank is None for s in scores_of(result))
    assert loaded_rerankers() == loaded
    with pytest.raises(ModelNotAvailableError, match="No reranker model at"):
        make_retriever(reranker=nowhere).search(QUERIES[0], rerank="cross-encoder")


def test_the_colbert_argument_still_switches_colbert(reranking: Callable[..., HybridRetriever]) -> None:
    retriever = reranking(rerank_candidates=3)
    colbert = retriever.search(QUERIES[0], colbert=True)
    assert colbert.rerank == "colbert" and colbert.colbert
    assert all(s.rerank is None for s in scores_of(colbert)) and scores_of(colbert)[0].colbert is not None
    kept = retriever.search(QUERIES[0], colbert=False)  # off means "not ColBERT": the cross-encoder stays
    assert kept.rerank == "cross-encoder" and scores_of(kept)[0].rerank is not None
