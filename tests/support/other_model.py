"""A knowledge base written by another embedding model (a tiny model of another seed: another fingerprint)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ingest.pipeline import IngestPipeline
from rag.config import EmbeddingSettings, Settings
from rag.encoder import BGEM3Encoder, Encoder
from rag.store import MilvusStore
from rag.testing.tiny_bge_m3 import build_bge_m3_like
from tests.conftest import EXAMPLES, example_texts


def ingest_with_another_model(store: MilvusStore, settings: Settings, kb: str, work: Path) -> Encoder:
    """Ingest examples/kb/product-faq.md into ``kb`` with another model, built under ``work``; returns that model."""
    model_dir = build_bge_m3_like(work / "other", seed=1, extra_texts=example_texts(), max_length=512)
    other = BGEM3Encoder(EmbeddingSettings(model=str(model_dir), device="cpu", max_length=512))
    folder = work / "docs"
    folder.mkdir()
    shutil.copy(EXAMPLES / "product-faq.md", folder)
    embedding = settings.embedding.model_copy(update={"model": str(model_dir)})
    with IngestPipeline(settings.model_copy(update={"embedding": embedding}), other, store) as pipeline:
        pipeline.run([folder], kb=kb)
    return other
