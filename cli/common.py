"""What the `rag` commands share: settings, the loaded encoder and store, and the retriever of a knowledge base."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rag.config import Settings, load_settings

console = Console()
err = Console(stderr=True)

KbOption = Annotated[str | None, typer.Option("--kb", help="Knowledge base name (default: kb.name setting).")]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML file overriding configs/default.yaml.", show_default=False)
]
TopKOption = Annotated[int | None, typer.Option("--top-k", "-k", min=1, help="Chunks to return (retrieval.top_k).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def settings_from(config: Path | None) -> Settings:
    return load_settings(config)


def load_encoder_with_status(settings: Settings):
    from rag.encoder import load_encoder

    with err.status(f"Loading embedding model {settings.embedding.model} ..."):
        return load_encoder(settings.embedding, data_dir=settings.app.data_dir)


@contextmanager
def open_retriever(settings: Settings, kb: str | None) -> Iterator:
    """The hybrid retriever of knowledge base ``kb`` (default kb.name), with the store closed afterwards."""
    from rag.retrieval import HybridRetriever
    from rag.store import MilvusStore

    encoder = load_encoder_with_status(settings)
    with MilvusStore(settings.milvus) as store:
        yield HybridRetriever.from_store(encoder, store, kb or settings.kb.name, settings.retrieval)
