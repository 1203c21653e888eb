"""The recall workbench: browse a knowledge base's chunks (chunks.py) and explain why a chunk was not retrieved
(explain.py)."""

from rag.workbench.chunks import ChunkBrowser, ChunkPage, ChunkView, DocumentEntry

__all__ = ["ChunkBrowser", "ChunkPage", "ChunkView", "DocumentEntry"]
