"""Several knowledge bases in one search (MultiKBRetriever): the demo files split into two knowledge bases give the
result of one knowledge base holding them all, weighted and rrf; with every chunk a candidate, the merge of the
single-KB results; mixed models are refused; LangChain's standard retriever tests pass."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from ingest.pipeline import IngestPipeline
from rag.config import RetrievalSettings, Settings
from rag.encoder import Encoder
from rag.errors import ModelMismatchError
from rag.retrieval import HybridRetriever, MultiKBRetriever, RetrievalResult
from rag.store import MilvusStore
from tests.conftest import EXAMPLES
from tests.support.other_model import ingest_with_another_model

PART_A = ("README.md", "faq-zh.md", "product-faq.md", "remote-work-policy.html")
PART_B = ("glossary.csv", "hr-policy-zh.txt", "onboarding.docx", "tech-note-sync.pdf")
QUERIES = ["How does the sync engine resolve conflicts?", "员工每年享有多少天带薪年假？", "remote work days per week",
           "vector clock 向量时钟"]


@pytest.fixture(scope="module")
def split_kbs(encoder: Encoder, make_settings: Callable[..., Settings],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusStore]:
    """kb_a and kb_b hold the two halves of examples/kb, kb_all both halves, kb_copy the same files as kb_a."""
    root = tmp_path_factory.mktemp("multi")
    for part, names in (("a", PART_A), ("b", PART_B)):
        (root / part).mkdir()
        for name in names:
            shutil.copy(EXAMPLES / name, root / part / name)
    settings = make_settings(root)
    with MilvusStore(settings.milvus) as store:
        pipeline = IngestPipeline(settings, encoder, store)
        for kb, folders in (("kb_a", ["a"]), ("kb_b", ["b"]), ("kb_all", ["a", "b"]), ("kb_copy", ["a"])):
            report = pipeline.run([root / f for f in folders], kb=kb)
            assert not report.failed and report.chunks_written > 0
        yield store


def single(encoder: Encoder, store: MilvusStore, kb: str, **retrieval: Any) -> HybridRetriever:
    return HybridRetriever.from_store(encoder, store, kb, RetrievalSettings(**retrieval))


def multi(encoder: Encoder, store: MilvusStore, kbs: list[str], **retrieval: Any) -> MultiKBRetriever:
    return MultiKBRetriever.from_store(encoder, store, kbs, RetrievalSettings(**retrieval))


def summary(result: RetrievalResult) -> list[tuple[str, float, int | None, int | None]]:
    """Each chunk's id, final score and places in the dense and sparse lists."""
    return [(d.metadata["id"], round(d.metadata["scores"]["final"], 6), d.metadata["scores"]["dense_rank"],
             d.metadata["scores"]["sparse_rank"]) for d in result.documents]


@pytest.mark.parametrize("fusion", ["weighted", "rrf"])
@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_two_knowledge_bases_give_what_one_holding_all_their_chunks_gives(
    encoder: Encoder, split_kbs: MilvusStore, fusion: str, mode: str
) -> None:
    both = multi(encoder, split_kbs, ["kb_a", "kb_b"], fusion=fusion, mode=mode, top_k=6, candidate_factor=2)
    whole = single(encoder, split_kbs, "kb_all", fusion=fusion, mode=mode, top_k=6, candidate_factor=2)
    seen = set()
    for query in QUERIES:
        merged, reference = both.search(query), whole.search(query)
        assert summary(merged) == summary(reference)
        assert len(merged.documents) == (6 if mode != "sparse" else len(reference.documents))
        assert merged.kbs == ["kb_a", "kb_b"] and merged.kb == "kb_a+kb_b"
        for doc in merged.documents:
            assert doc.metadata["kb"] == ("kb_a" if doc.metadata["source"] in PART_A else "kb_b")
            seen.add(doc.metadata["kb"])
        floor = reference.documents[min(3, len(reference.documents) - 1)].metadata["scores"]["final"]
        cut = both.search(query, min_score=floor)
        assert summary(cut) == summary(whole.search(query, min_score=floor)) and cut.documents
        assert all(d.metadata["scores"]["final"] >= floor for d in cut.documents)
    assert seen == {"kb_a", "kb_b"}  # the queries find chunks of both halves


@pytest.mark.parametrize("top_k,min_score", [(3, 0.0), (8, 0.0), (8, 0.3)])
def test_with_every_chunk_a_candidate_weighted_results_are_the_single_results_merged_by_final(
    encoder: Encoder, split_kbs: MilvusStore, top_k: int, min_score: float
) -> None:
    cfg = {"fusion": "weighted", "top_k": top_k, "candidate_factor": 100, "min_score": min_score}
    both = multi(encoder, split_kbs, ["kb_a", "kb_b"], **cfg)
    for query in QUERIES:
        brute = [d for kb in ("kb_a", "kb_b") for d in single(encoder, split_kbs, kb, **cfg).search(query).documents]
        brute.sort(key=lambda d: (-d.metadata["scores"]["final"], -d.metadata["scores"]["dense"], d.metadata["id"]))
        expected = [(d.metadata["kb"], d.metadata["id"], d.metadata["scores"]["final"]) for d in brute[:top_k]]
        result = both.search(query)
        assert result.dense_hits == split_kbs.open("kb_a").count() + split_kbs.open("kb_b").count()  # all chunks
        got = [(d.metadata["kb"], d.metadata["id"], d.metadata["scores"]["final"]) for d in result.documents]
        assert [g[:2] for g in got] == [e[:2] for e in expected]
        assert [g[2] for g in got] == pytest.approx([e[2] for e in expected], abs=1e-9)
        assert all(score >= min_score for _, _, score in got)


def test_the_same_chunk_in_two_knowledge_bases_is_shown_once_per_knowledge_base(
    encoder: Encoder, split_kbs: MilvusStore
) -> None:
    result = multi(encoder, split_kbs, ["kb_a", "kb_copy"], top_k=4).search(QUERIES[2])
    docs = result.documents
    assert [d.metadata["kb"] for d in docs] == ["kb_a", "kb_copy", "kb_a", "kb_copy"]
    assert docs[0].metadata["id"] == docs[1].metadata["id"] and docs[2].metadata["id"] == docs[3].metadata["id"]
    for name in ("dense", "sparse", "hybrid", "final"):  # the same chunk scores the same; its list places differ
        assert docs[0].metadata["scores"][name] == docs[1].metadata["scores"][name]
    assert docs[0].metadata["scores"]["dense_rank"] == 1 and docs[1].metadata["scores"]["dense_rank"] == 2


def test_colbert_and_filters_apply_after_the_merge(encoder: Encoder, split_kbs: MilvusStore) -> None:
    both = multi(encoder, split_kbs, ["kb_a", "kb_b"], top_k=5, rerank="colbert")
    whole = single(encoder, split_kbs, "kb_all", top_k=5, rerank="colbert")
    for query in QUERIES[:2]:
        merged, reference = both.search(query), whole.search(query)
        assert summary(merged) == summary(reference)
        assert all(d.metadata["scores"]["colbert"] is not None for d in merged.documents)
    only_pdf = both.search(QUERIES[0], filters={"file_types": ["pdf"]})
    assert only_pdf.documents and {d.metadata["kb"] for d in only_pdf.documents} == {"kb_b"}
    assert only_pdf.filters["file_types"] == ["pdf"]


def test_knowledge_bases_built_with_another_model_are_refused(
    encoder: Encoder, split_kbs: MilvusStore, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    other = ingest_with_another_model(split_kbs, make_settings(tmp_path), "kb_other", tmp_path)
    for names in (["kb_a", "kb_other"], ["kb_other", "kb_b"]):
        with pytest.raises(ModelMismatchError) as caught:
            MultiKBRetriever.from_store(encoder, split_kbs, names, RetrievalSettings())
        message = str(caught.value)
        assert "different embedding models" in message and "kb_other" in message and "one at a time" in message
    with pytest.raises(ModelMismatchError, match="different embedding models"):
        MultiKBRetriever(retrievers=[single(encoder, split_kbs, "kb_a"),
                                     HybridRetriever.from_store(other, split_kbs, "kb_other", RetrievalSettings())])
    split_kbs.drop("kb_other")


class TestMultiKBRetrieverStandard(RetrieversIntegrationTests):
    """``MultiKBRetriever(retrievers=[...], k=n)`` and ``invoke(query, k=n)``, as LangChain expects."""

    @pytest.fixture(autouse=True)
    def _knowledge_bases(self, encoder: Encoder, split_kbs: MilvusStore) -> None:
        self._params = {"retrievers": [single(encoder, split_kbs, "kb_a"), single(encoder, split_kbs, "kb_b")]}

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return MultiKBRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return self._params

    @property
    def retriever_query_example(self) -> str:
        return "How does the sync engine resolve conflicts?"
