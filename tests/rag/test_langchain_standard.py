"""LangChain's own standard retriever tests (langchain-tests) against HybridRetriever, sync and async.

The knowledge base is a handful of small documents ingested by the test with the shared tiny bge-m3-format model
into embedded milvus-lite. The async test (``ainvoke``) runs under pytest-asyncio (``asyncio_mode = "auto"`` in
pyproject.toml, as LangChain's own packages do), since the standard tests must not be overridden.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from ingest.pipeline import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.retrieval import HybridRetriever
from rag.store import KnowledgeBase, MilvusStore, ModelInfo

KB = "standard"
DOCUMENTS = {
    "sync.md": "# Sync\n\nThe sync engine resolves conflicts with a vector clock.\n",
    "leave.txt": "A new employee reviews annual leave requests with the manager.\n",
    "backup.md": "# Backup\n\nThe app stores notes offline and makes a backup every night.\n",
    "search.txt": "The search index ranks chunks by their similarity.\n",
    "zh.txt": "同步引擎保存离线笔记。新员工审核年假申请。\n",
}


@pytest.fixture(scope="module")
def small_kb(encoder: Encoder, make_settings: Callable[..., Settings],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    root: Path = tmp_path_factory.mktemp("standard")
    folder = root / "docs"
    folder.mkdir()
    for name, text in DOCUMENTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    settings = make_settings(root)
    with MilvusStore(settings.milvus) as store:
        report = IngestPipeline(settings, encoder, store).run([folder], kb=KB)
        assert not report.failed and report.chunks_written == len(DOCUMENTS)
        yield store.open(KB, ModelInfo.of(encoder))


class TestHybridRetrieverStandard(RetrieversIntegrationTests):
    """``HybridRetriever(encoder=..., knowledge_base=..., k=n)`` and ``invoke(query, k=n)``, as LangChain expects."""

    @pytest.fixture(autouse=True)
    def _knowledge_base(self, encoder: Encoder, small_kb: KnowledgeBase) -> None:
        self._params = {"encoder": encoder, "knowledge_base": small_kb}

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return HybridRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return self._params

    @property
    def retriever_query_example(self) -> str:
        return "How does the sync engine resolve conflicts?"


async def test_concurrent_ainvoke_equals_invoke(encoder: Encoder, small_kb: KnowledgeBase) -> None:
    retriever = HybridRetriever(encoder=encoder, knowledge_base=small_kb)
    queries = ["sync engine conflicts", "annual leave", "backup every night", "同步引擎", "search index ranks"]
    together = await asyncio.gather(*(retriever.ainvoke(q, k=k) for k, q in enumerate(queries, start=1)))
    for k, (query, docs) in enumerate(zip(queries, together, strict=True), start=1):
        assert [d.id for d in docs] == [d.id for d in retriever.invoke(query, k=k)] and len(docs) == k
