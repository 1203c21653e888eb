"""Explain a miss on the demo knowledge base: exact ranks against brute force, each cut produced on purpose."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rag.config import RetrievalSettings, Settings
from rag.encoder import Encoder
from rag.errors import InvalidInputError
from rag.retrieval import HybridRetriever
from rag.retrieval.retriever import OUTPUT_FIELDS
from rag.retrieval.scores import dense_scores, lexical_score
from rag.store import MilvusStore
from rag.store.schema import decode_sparse
from rag.workbench.explain import RRF_KS, SPARSE_WEIGHTS, explain, explain_document

KB = "demo"
QUERY = "How does the sync engine resolve conflicts?"


@pytest.fixture(scope="module")
def brute_force(encoder: Encoder, make_retriever: Callable[..., HybridRetriever]) -> dict[str, dict[str, float]]:
    """Exact dense and sparse scores of QUERY against every chunk of the knowledge base."""
    rows = make_retriever().knowledge_base.rows("", OUTPUT_FIELDS)
    q = encoder.encode([QUERY])
    dense = dense_scores(q.dense[0], np.asarray([r["dense"] for r in rows], np.float32)).tolist()
    return {r["id"]: {"dense": d, "sparse": lexical_score(q.sparse[0], decode_sparse(r["sparse"]))}
            for r, d in zip(rows, dense, strict=True)}


def ranked(scores: dict[str, dict[str, float]], name: str) -> list[str]:
    return sorted(scores, key=lambda chunk_id: (-scores[chunk_id][name], chunk_id))


def fused(brute_force: dict[str, dict[str, float]], weights: dict[str, float], rrf_k: int = 60) -> dict[str, dict]:
    """Hybrid and rrf of every chunk as if the candidate lists held every chunk: the dense list all of them, the
    sparse list those sharing a query token, each in exact-score order."""
    dense_at = {c: i for i, c in enumerate(ranked(brute_force, "dense"), start=1)}
    sparse_at = {c: i for i, c in enumerate((c for c in ranked(brute_force, "sparse") if brute_force[c]["sparse"] > 0),
                                            start=1)}
    total = weights["dense"] + weights["sparse"]
    return {c: {**s, "hybrid": (weights["dense"] * s["dense"] + weights["sparse"] * s["sparse"]) / total,
                "rrf": 1 / (rrf_k + dense_at[c]) + (1 / (rrf_k + sparse_at[c]) if c in sparse_at else 0.0)}
            for c, s in brute_force.items()}


@pytest.mark.parametrize(("retrieval", "final"), [
    ({}, "hybrid"), ({"fusion": "rrf"}, "rrf"), ({"mode": "dense"}, "dense"), ({"fusion": "rrf", "rrf_k": 5}, "rrf"),
    ({"weights": {"dense": 0.2, "sparse": 1.0}}, "hybrid"),
])
def test_fused_ranks_equal_a_brute_force_fusion_of_every_chunk(
    make_retriever: Callable[..., HybridRetriever], brute_force: dict[str, dict[str, float]],
    retrieval: dict, final: str,
) -> None:
    """hybrid, rrf and final ranks among all chunks, as if the candidate lists were unlimited (top_k 2 here)."""
    retriever = make_retriever(top_k=2, candidate_factor=1, **retrieval)
    cfg = retriever.settings
    every = fused(brute_force, cfg.weights.model_dump(), cfg.rrf_k)
    order = sorted(every, key=lambda c: (-every[c][final], -every[c]["dense"], c))
    picked = [order[0], order[1], order[2], order[9], order[len(order) // 2], order[-1]]
    for chunk_id, result in zip(picked, [explain(retriever, QUERY, c) for c in picked], strict=True):
        mine = every[chunk_id]
        for name in ("hybrid", "rrf"):
            rank = getattr(result, f"{name}_rank")
            expected = 1 + sum(1 for other in every.values() if other[name] > mine[name])
            assert (rank.rank, rank.exact) == (expected, True), (name, chunk_id)
            assert rank.score == pytest.approx(mine[name], abs=1e-9)
        assert (result.final_rank.rank, result.final_rank.exact) == (order.index(chunk_id) + 1, True)
    # Beyond the search's own cut: a chunk at final rank 3 here is missed with top_k 2.
    assert explain(retriever, QUERY, order[2]).lost_at != "retrieved"


def test_ranks_and_scores_equal_a_brute_force_scoring_of_every_chunk(
    make_retriever: Callable[..., HybridRetriever], brute_force: dict[str, dict[str, float]]
) -> None:
    retriever = make_retriever()
    by_dense = ranked(brute_force, "dense")
    for chunk_id in [by_dense[0], by_dense[7], by_dense[len(by_dense) // 2], by_dense[-1]]:
        result = explain(retriever, QUERY, chunk_id)
        exact = brute_force[chunk_id]
        assert result.scores.dense == pytest.approx(exact["dense"], abs=1e-9)
        assert result.scores.sparse == pytest.approx(exact["sparse"], abs=1e-9)
        for name in ("dense", "sparse"):
            expected = 1 + sum(1 for other in brute_force.values() if other[name] > exact[name])
            rank = getattr(result, name)
            assert rank.exact and rank.rank == expected, (name, chunk_id)
            assert rank.score == pytest.approx(exact[name], abs=1e-9)
        assert sum(t["contribution"] for t in result.matched_terms) == pytest.approx(exact["sparse"], abs=1e-9)
        matched = {t["token_id"] for t in result.matched_terms}
        assert not matched & {t["token_id"] for t in result.missing_terms}
        weights = [t["query_weight"] for t in result.missing_terms]
        assert weights == sorted(weights, reverse=True)
    # The order of the brute force is the order of the ranks.
    ranks = [explain(retriever, QUERY, chunk_id).dense.rank for chunk_id in by_dense[:4]]
    assert ranks == sorted(ranks)


def test_a_retrieved_chunk_is_reported_with_its_rank(make_retriever: Callable[..., HybridRetriever]) -> None:
    retriever = make_retriever()
    documents = retriever.search(QUERY).documents
    third = documents[2]
    result = explain(retriever, QUERY, third.metadata["id"])
    assert (result.lost_at, result.retrieved_rank) == ("retrieved", 3)
    assert result.scores.final == pytest.approx(third.metadata["scores"]["final"], abs=1e-12)
    expected = third.metadata["scores"]
    for key, value in result.scores.to_metadata().items():
        assert value == (pytest.approx(expected[key], abs=1e-12) if isinstance(value, float) else expected[key]), key
    assert "retrieved at rank 3" in result.reason
    assert not result.fixes


def test_a_chunk_outside_the_candidate_lists_is_lost_there_and_the_factor_that_brings_it_in_is_checked(
    make_retriever: Callable[..., HybridRetriever], brute_force: dict[str, dict[str, float]]
) -> None:
    retriever = make_retriever(top_k=2, candidate_factor=1, mode="dense")
    target = ranked(brute_force, "dense")[6]
    result = explain(retriever, QUERY, target)
    assert result.lost_at == "candidates" and result.candidate_limit == 2
    assert "outside the dense candidate list" in result.reason and "rank 7" in result.reason
    (fix,) = result.fixes
    assert fix.setting == "candidate_factor" and fix.value == 4  # position 7 needs 2 x 4 = 8 candidates
    # The suggestion is the smallest: one less leaves it outside, the suggestion makes it a candidate.
    assert explain(make_retriever(top_k=2, candidate_factor=3, mode="dense"), QUERY, target).lost_at == "candidates"
    assert explain(make_retriever(top_k=2, candidate_factor=4, mode="dense"), QUERY, target).lost_at == "top_k"
    # In dense mode its rank is its dense rank, so the retrieval re-run with the fix reports it still missed.
    assert fix.retrieved_rank is None and not fix.works


def test_the_candidate_factor_fix_applied_brings_the_chunk_into_top_k(
    make_retriever: Callable[..., HybridRetriever], brute_force: dict[str, dict[str, float]]
) -> None:
    retriever = make_retriever(top_k=3, candidate_factor=1, mode="hybrid", fusion="rrf")
    by_dense, by_sparse = ranked(brute_force, "dense"), ranked(brute_force, "sparse")
    # A chunk far down both lists: rrf of a single list at rank > 3 cannot beat the top 3 holding both.
    target = next(c for c in by_dense[3:] if by_sparse.index(c) >= 3)
    result = explain(retriever, QUERY, target)
    assert result.lost_at == "candidates"
    (fix,) = result.fixes
    changed = make_retriever(top_k=3, candidate_factor=fix.value, mode="hybrid", fusion="rrf")
    found = [d.metadata["id"] for d in changed.search(QUERY).documents]
    assert (target in found) == fix.works
    assert explain(changed, QUERY, target).lost_at != "candidates"


def test_a_chunk_below_min_score_is_lost_there(make_retriever: Callable[..., HybridRetriever]) -> None:
    first = make_retriever().search(QUERY).documents[0]
    final = first.metadata["scores"]["final"]
    result = explain(make_retriever(min_score=final + 0.01), QUERY, first.metadata["id"])
    assert result.lost_at == "min_score"
    assert result.scores.final == pytest.approx(final, abs=1e-12)
    assert f"below min_score {final + 0.01:g}" in result.reason
    (fix,) = result.fixes
    assert fix.setting == "min_score" and final - 1e-4 <= fix.value <= final
    assert fix.works and fix.retrieved_rank == 1
    lowered = make_retriever(min_score=fix.value).search(QUERY).documents
    assert lowered[0].metadata["id"] == first.metadata["id"]


def test_a_chunk_ranked_below_top_k_after_fusion_is_lost_there(
    make_retriever: Callable[..., HybridRetriever]
) -> None:
    fourth = make_retriever(top_k=5).search(QUERY).documents[3]
    result = explain(make_retriever(top_k=2, candidate_factor=10), QUERY, fourth.metadata["id"])
    assert (result.lost_at, result.pool_rank) == ("top_k", 4)
    assert "below top_k 2" in result.reason
    top_k = next(f for f in result.fixes if f.setting == "top_k")
    assert (top_k.value, top_k.retrieved_rank) == (4, 4)


def test_weights_decide_which_cut_loses_a_chunk(
    make_retriever: Callable[..., HybridRetriever], brute_force: dict[str, dict[str, float]]
) -> None:
    """The sparse-heaviest chunk that dense ranks low is lost with dense weights and found with sparse ones."""
    by_dense = ranked(brute_force, "dense")
    target = next(c for c in ranked(brute_force, "sparse") if by_dense.index(c) >= 3)
    dense_heavy = explain(make_retriever(top_k=3, candidate_factor=20, weights={"dense": 1.0, "sparse": 0.0}),
                          QUERY, target)
    assert dense_heavy.lost_at == "top_k" and dense_heavy.pool_rank == by_dense.index(target) + 1
    weight = next(f for f in dense_heavy.fixes if f.setting == "weights.sparse")
    assert weight.value > 0 and weight.works and weight.retrieved_rank <= 3
    applied = make_retriever(top_k=3, candidate_factor=20, weights={"dense": 1.0, "sparse": weight.value})
    assert target in [d.metadata["id"] for d in applied.search(QUERY).documents]
    # The nearest weight that works: the one before it on the grid, on the same side, does not.
    grid = SPARSE_WEIGHTS[:SPARSE_WEIGHTS.index(weight.value)]
    if grid:
        closer = make_retriever(top_k=3, candidate_factor=20, weights={"dense": 1.0, "sparse": grid[-1]})
        assert target not in [d.metadata["id"] for d in closer.search(QUERY).documents]
    sparse_heavy = explain(make_retriever(top_k=3, candidate_factor=20, weights={"dense": 0.0, "sparse": 1.0}),
                           QUERY, target)
    assert sparse_heavy.lost_at == "retrieved"


def test_an_unknown_chunk_or_empty_query_is_refused(make_retriever: Callable[..., HybridRetriever]) -> None:
    with pytest.raises(InvalidInputError, match="no chunk with id"):
        explain(make_retriever(), QUERY, 'nope" || id != "')
    with pytest.raises(InvalidInputError, match="query is empty"):
        explain(make_retriever(), " ", "x")


def test_to_dict_is_json(make_retriever: Callable[..., HybridRetriever]) -> None:
    first = make_retriever().search(QUERY).documents[0]
    data = json.loads(json.dumps(explain(make_retriever(), QUERY, first.metadata["id"]).to_dict()))
    assert data["lost_at"] == "retrieved" and data["scores"]["final"] == first.metadata["scores"]["final"]
    assert data["dense"]["exact"] is True


def test_a_chunk_retrieved_with_colbert_reranking_keeps_the_search_scores(
    make_retriever: Callable[..., HybridRetriever]
) -> None:
    retriever = make_retriever(colbert_rerank=True)
    second = retriever.search(QUERY).documents[1]
    result = explain(retriever, QUERY, second.metadata["id"])
    assert (result.lost_at, result.retrieved_rank) == ("retrieved", 2)
    assert result.scores.colbert is not None
    assert result.scores.to_metadata() == second.metadata["scores"]


@pytest.mark.parametrize("exact", [True, False], ids=["in process", "by Milvus"])
def test_a_neighbour_that_scores_higher_is_named(make_retriever: Callable[..., HybridRetriever], exact: bool) -> None:
    """The chunk after (or before) the best one, in the same document, is told that its neighbour wins (found by id
    through the in-process index, or by a filter on the document)."""
    retriever = make_retriever(**({} if exact else {"exact_max_chunks": 0}))
    best = retriever.search(QUERY).documents[0]
    siblings = retriever.knowledge_base.rows(f'doc_id == "{best.metadata["doc_id"]}"', ["id", "chunk_index"])
    index = next(r["chunk_index"] for r in siblings if r["id"] == best.metadata["id"])
    target = next(r for r in siblings if r["chunk_index"] in (index - 1, index + 1))
    result = explain(retriever, QUERY, target["id"])
    (neighbour,) = [n for n in result.neighbours if n.chunk_id == best.metadata["id"]]
    assert neighbour.relation == ("after" if target["chunk_index"] < index else "before")
    assert neighbour.higher and neighbour.retrieved_rank == 1 and result.spans_neighbour
    assert neighbour.scores.final == pytest.approx(best.metadata["scores"]["final"], abs=1e-12)
    assert "may span both" in result.reason
    assert all(n.chunk_index in (target["chunk_index"] - 1, target["chunk_index"] + 1) for n in result.neighbours)
    assert len(result.neighbours) == sum(1 for r in siblings if abs(r["chunk_index"] - target["chunk_index"]) == 1)


def test_a_chunk_the_filters_leave_out_is_lost_there(encoder: Encoder, demo: tuple[Settings, MilvusStore],
                                                     make_retriever: Callable[..., HybridRetriever]) -> None:
    best = make_retriever().search(QUERY).documents[0]
    other = next(r["source"] for r in make_retriever().knowledge_base.rows("", ["source"])
                 if r["source"] != best.metadata["source"])
    filtered = HybridRetriever.from_store(encoder, demo[1], KB, RetrievalSettings(), filters={"source": other})
    result = explain(filtered, QUERY, best.metadata["id"])
    assert result.lost_at == "filters" and "leave it out" in result.reason and not result.fixes
    same = HybridRetriever.from_store(encoder, demo[1], KB, RetrievalSettings(),
                                      filters={"source": best.metadata["source"]})
    assert explain(same, QUERY, best.metadata["id"]).lost_at == "retrieved"


def test_the_chunks_of_a_document_are_each_explained_as_alone(make_retriever: Callable[..., HybridRetriever]) -> None:
    retriever = make_retriever(top_k=3)
    best = retriever.search(QUERY).documents[0]
    results = explain_document(retriever, QUERY, best.metadata["source"])
    assert [r.chunk_index for r in results] == sorted(r.chunk_index for r in results) and len(results) > 1
    assert {r.source for r in results} == {best.metadata["source"]}
    by_id = {r.chunk_id: r for r in results}
    assert by_id[best.metadata["id"]].retrieved_rank == 1
    for alone in (explain(retriever, QUERY, r.chunk_id) for r in results[:4]):
        mine = by_id[alone.chunk_id]
        assert (mine.lost_at, mine.reason, mine.dense, mine.sparse) == (alone.lost_at, alone.reason, alone.dense,
                                                                       alone.sparse)
        assert mine.scores.to_metadata() == alone.scores.to_metadata()
    with pytest.raises(InvalidInputError, match="no document"):
        explain_document(retriever, QUERY, "nope.md")


def lost_at_top_k_under_rrf(make_retriever: Callable[..., HybridRetriever], setting: str) -> tuple[str, object]:
    """A chunk ranked 3rd to 10th by rrf among 20 candidates (missed at top_k 2) that ``setting`` brings in."""
    pool = make_retriever(top_k=10, candidate_factor=2, fusion="rrf").search(QUERY).documents[2:]
    for document in pool:
        result = explain(make_retriever(top_k=2, candidate_factor=10, fusion="rrf"), QUERY, document.metadata["id"])
        assert result.lost_at == "top_k"
        fix = next((f for f in result.fixes if f.setting == setting), None)
        if fix is not None:
            return document.metadata["id"], fix
    raise AssertionError(f"no chunk of the demo knowledge base has a {setting} fix")


@pytest.mark.parametrize("setting", ["fusion", "rrf_k"])
def test_a_fusion_change_brings_a_chunk_lost_at_top_k_under_rrf_into_top_k(
    make_retriever: Callable[..., HybridRetriever], setting: str
) -> None:
    chunk_id, fix = lost_at_top_k_under_rrf(make_retriever, setting)
    assert fix.works and fix.retrieved_rank <= 2 and not fix.also
    applied = make_retriever(**{"top_k": 2, "candidate_factor": 10, "fusion": "rrf", setting: fix.value})
    assert chunk_id in [d.metadata["id"] for d in applied.search(QUERY).documents]
    if setting == "rrf_k":  # the nearest value on the grid that works: those closer to 60 do not
        closer = [k for k in RRF_KS if abs(k - 60) < abs(fix.value - 60) and k != 60]
        for k in closer:
            assert explain(make_retriever(top_k=2, candidate_factor=10, fusion="rrf", rrf_k=k), QUERY,
                           chunk_id).lost_at == "top_k", k


def test_the_sparse_weight_with_weighted_fusion_is_offered_when_the_current_weights_do_not_fit(
    make_retriever: Callable[..., HybridRetriever], brute_force: dict[str, dict[str, float]]
) -> None:
    """Under rrf with dense weight 1 and sparse 0, a sparse-only favourite needs weighted fusion and a sparse weight."""
    by_dense = ranked(brute_force, "dense")
    target = next(c for c in ranked(brute_force, "sparse") if by_dense.index(c) >= 6)
    settings = {"top_k": 2, "candidate_factor": 10, "fusion": "rrf", "weights": {"dense": 1.0, "sparse": 0.0}}
    result = explain(make_retriever(**settings), QUERY, target)
    assert result.lost_at == "top_k", result.reason
    fix = next(f for f in result.fixes if f.setting == "weights.sparse")
    assert fix.also == {"fusion": "weighted"} and fix.works and fix.value > 0
    assert fix.describe() == f"fusion = weighted, weights.sparse = {fix.value}"
    applied = make_retriever(**{**settings, "fusion": "weighted", "weights": {"dense": 1.0, "sparse": fix.value}})
    assert target in [d.metadata["id"] for d in applied.search(QUERY).documents]
    assert not any(f.setting == "fusion" for f in result.fixes)  # the current weights alone do not bring it in


def test_the_filter_that_drops_a_chunk_is_named_and_the_search_without_it_checked(
    encoder: Encoder, demo: tuple[Settings, MilvusStore], make_retriever: Callable[..., HybridRetriever]
) -> None:
    best = make_retriever().search(QUERY).documents[0]
    other = next(r["source"] for r in make_retriever().knowledge_base.rows("", ["source"])
                 if r["source"] != best.metadata["source"])
    file_type = best.metadata["metadata"]["file_type"]
    filters = {"source": other, "metadata": {"file_type": file_type}}
    filtered = HybridRetriever.from_store(encoder, demo[1], KB, RetrievalSettings(), filters=filters)
    result = explain(filtered, QUERY, best.metadata["id"])
    assert result.lost_at == "filters" and result.dropped_by == [f'source == "{other}"']
    assert f'source == "{other}"' in result.reason.split("leave it out")[1]
    fix = result.filter_fix
    assert fix is not None and fix.setting == "filters" and fix.works and fix.retrieved_rank == 1
    assert fix.value == {"source": None, "source_prefix": None, "metadata": {"file_type": file_type}}
    without = HybridRetriever.from_store(encoder, demo[1], KB, RetrievalSettings(), filters=fix.value)
    assert without.search(QUERY).documents[0].metadata["id"] == best.metadata["id"]
    assert json.loads(json.dumps(result.to_dict()))["filter_fix"]["works"] is True


def test_the_top_k_fix_is_the_smallest_that_brings_the_chunk_in_with_the_candidates_it_adds(
    make_retriever: Callable[..., HybridRetriever]
) -> None:
    """Under rrf a larger top_k also fetches more candidates: the suggested top_k is checked, and one less fails."""
    grown = []
    for query in (QUERY, "How does the sync engine order edits? vector clock"):
        pool = make_retriever(top_k=8, candidate_factor=1, fusion="rrf").search(query).documents  # top_k 2 x 4
        for document in pool[2:]:
            result = explain(make_retriever(top_k=2, fusion="rrf"), query, document.metadata["id"])
            assert result.lost_at == "top_k"
            fix = next(f for f in result.fixes if f.setting == "top_k")
            assert fix.works and fix.retrieved_rank <= fix.value
            if fix.value > result.pool_rank:
                grown.append(fix.value)
                less = make_retriever(top_k=fix.value - 1, fusion="rrf").search(query).documents
                assert document.metadata["id"] not in [d.metadata["id"] for d in less]
    assert grown, "no chunk here needs a top_k above its rank among the candidates: the test shows nothing"


def test_with_the_cross_encoder_every_explanation_gives_the_chunks_rerank_score(
    make_retriever: Callable[..., HybridRetriever], tiny_reranker_dir: Path
) -> None:
    from FlagEmbedding import FlagReranker

    reranker = {"model": str(tiny_reranker_dir), "device": "cpu"}
    retriever = make_retriever(rerank="cross-encoder", reranker=reranker, rerank_candidates=4, top_k=3)
    result = retriever.search(QUERY)
    second = result.documents[1]
    explained = explain(retriever, QUERY, second.metadata["id"])
    assert (explained.lost_at, explained.retrieved_rank) == ("retrieved", 2)
    assert explained.scores.to_metadata() == second.metadata["scores"]  # the search's numbers, rerank included
    assert explained.rerank is not None
    assert (explained.rerank.raw, explained.rerank.normalised) == (second.metadata["scores"]["rerank_raw"],
                                                                  second.metadata["scores"]["rerank"])
    retrieved = {d.metadata["id"] for d in result.documents}
    missed = next(r for r in retriever.knowledge_base.rows("", ["id", "text"]) if r["id"] not in retrieved)
    other = explain(retriever, QUERY, missed["id"])
    assert other.lost_at != "retrieved" and other.scores.rerank is None  # its final is before the rerank
    flag = FlagReranker(str(tiny_reranker_dir), use_fp16=False, devices="cpu")
    assert other.rerank is not None
    assert other.rerank.raw == pytest.approx(flag.compute_score([(QUERY, missed["text"])])[0], abs=1e-5)
    assert other.rerank.normalised == pytest.approx(
        flag.compute_score([(QUERY, missed["text"])], normalize=True)[0], abs=1e-5)
    assert json.loads(json.dumps(other.to_dict()))["rerank"] == {"raw": other.rerank.raw,
                                                                 "normalised": other.rerank.normalised}
    assert explain(make_retriever(), QUERY, missed["id"]).rerank is None  # rerank: none
