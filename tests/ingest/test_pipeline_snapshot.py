"""An ingest keeps the exact index of an embedded knowledge base current and leaves its snapshot: the next process
lists the stored documents and searches from it, and both equal what Milvus holds."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import IngestPipeline
from ingest.report import IngestReport
from rag.config import Settings
from rag.encoder import Encoder
from rag.store import KnowledgeBase, MilvusStore
from rag.store.embedded_engine import EmbeddedEngine
from rag.store.exact_snapshot import header, snapshot_path
from tests.conftest import EXAMPLES
from tests.rag.test_exact_snapshot import as_a_new_process


def ingest(settings: Settings, encoder: Encoder, folder: Path, **options: Any) -> tuple[IngestReport, Any]:
    """The report and the knowledge base's exact search state after the run."""
    with MilvusStore(settings.milvus) as store, IngestPipeline(settings, encoder, store) as pipeline:
        report = pipeline.run([folder], **options)
        return report, store.open(settings.kb.name).exact


def listing(kb: KnowledgeBase, **options: Any) -> dict[str, tuple[str, str, list[str], list[int], list[Any]]]:
    docs = kb.documents(**options)
    return {d.doc_id: (d.source, d.title, sorted(d.chunk_ids), sorted(d.chunk_indexes),
                       sorted(map(str, d.metadata))) for d in docs.values()}


@pytest.fixture
def engine_listings(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The fields of each whole-collection read of milvus-lite's engine (how documents are listed without an index)."""
    reads: list[list[str]] = []
    rows = EmbeddedEngine.rows

    def counted(self: EmbeddedEngine, fields: Any, ids: Any = None) -> Any:
        if ids is None:
            reads.append(list(fields))
        return rows(self, fields, ids)

    monkeypatch.setattr(EmbeddedEngine, "rows", counted)
    return reads


def test_an_ingest_leaves_a_snapshot_that_the_next_run_lists_documents_from(
    settings: Settings, encoder: Encoder, tmp_path: Path, engine_listings: list[list[str]]
) -> None:
    folder = tmp_path / "kb"
    shutil.copytree(EXAMPLES, folder)
    first, exact = ingest(settings, encoder, folder)
    path = snapshot_path(str(Path(settings.milvus.uri).resolve()), settings.kb.name)
    assert header(path)["rows"] == first.chunks_written and exact.builds == 0  # kept from empty, not read

    as_a_new_process(str(Path(settings.milvus.uri).resolve()), settings.kb.name)
    engine_listings.clear()
    second, exact = ingest(settings, encoder, folder)
    assert (second.unchanged, second.chunks_written) == (first.added, 0)
    assert (exact.loads, exact.builds) == (1, 0) and engine_listings == []

    (folder / "product-faq.md").write_text("# FAQ\n\nEverything changed.\n", encoding="utf-8")
    (folder / "glossary.csv").unlink()
    as_a_new_process(str(Path(settings.milvus.uri).resolve()), settings.kb.name)
    third, exact = ingest(settings, encoder, folder, prune=True)
    assert third.updated == 1 and third.pruned == 8 and (exact.loads, exact.builds) == (1, 0)

    as_a_new_process(str(Path(settings.milvus.uri).resolve()), settings.kb.name)
    with MilvusStore(settings.milvus) as store:
        kb = store.open(settings.kb.name)
        from_snapshot = listing(kb, exact_max_chunks=settings.retrieval.exact_max_chunks)
        assert kb.exact is not None and (kb.exact.loads, kb.exact.builds) == (1, 0)
        assert from_snapshot == listing(kb)  # read from Milvus
        assert "product-faq.md" in from_snapshot and not any(d.startswith("glossary.csv") for d in from_snapshot)


def test_a_knowledge_base_outgrowing_the_budget_during_an_ingest_leaves_no_snapshot(
    make_settings: Callable[..., Settings], encoder: Encoder, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, retrieval={"exact_max_chunks": 5})
    report, exact = ingest(settings, encoder, EXAMPLES)
    assert report.chunks_written > 5 and exact.index is None
    assert not snapshot_path(str(Path(settings.milvus.uri).resolve()), settings.kb.name).exists()
