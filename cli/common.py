"""What the `rag` commands share: settings, the loaded encoder and store, and the retriever of a knowledge base."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from clikit import ConfigOption, KbOption, console, err, safe
from rag.config import Settings

__all__ = ["ConfigOption", "JsonOption", "KbOption", "TopKOption", "console", "err", "load_encoder_with_status",
           "open_retriever"]

TopKOption = Annotated[int | None, typer.Option("--top-k", "-k", min=1, help="Chunks to return (retrieval.top_k).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def load_encoder_with_status(settings: Settings):
    from rag.encoder import load_encoder

    with err.status(f"Loading embedding model {safe(settings.embedding.model)} ..."):
        return load_encoder(settings.embedding, data_dir=settings.app.data_dir)


@contextmanager
def open_retriever(settings: Settings, kb: str | None) -> Iterator:
    """The hybrid retriever of knowledge base ``kb`` (default kb.name), with the store closed afterwards."""
    from rag.retrieval import HybridRetriever
    from rag.store import MilvusStore

    encoder = load_encoder_with_status(settings)
    with MilvusStore(settings.milvus) as store:
        yield HybridRetriever.from_store(encoder, store, kb or settings.kb.name, settings.retrieval)
