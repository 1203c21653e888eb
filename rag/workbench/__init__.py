"""The recall workbench: browse a knowledge base's chunks (and, later, explain misses and tune from judgments)."""

from rag.workbench.chunks import ChunkBrowser, ChunkPage, ChunkView, DocumentEntry

__all__ = ["ChunkBrowser", "ChunkPage", "ChunkView", "DocumentEntry"]
