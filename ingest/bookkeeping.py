"""What crash-safe ingest records in every chunk's metadata, and what it tells about a stored document.

The core store keeps metadata as given; these keys and their meaning belong to ``rag-ingest``. They are the
keys knowledge bases have always been written with, so existing knowledge bases keep working.

- ``content_hash``: sha256 of the document's text; ``chunk_count``: its number of chunks. A document is
  complete when every chunk has the same hash and indexes 0..chunk_count-1 are all there once.
- ``pipeline``: a fingerprint of everything that shapes the chunks and vectors (model, chunking, readers).
- ``file_hash`` and ``file_docs``: sha256 of the file's bytes and the number of documents read from it, so an
  unchanged file is recognised before it is parsed.
"""

from __future__ import annotations

from rag.store import StoredDocument

CONTENT_HASH = "content_hash"
CHUNK_COUNT = "chunk_count"
PIPELINE = "pipeline"
FILE_HASH = "file_hash"
FILE_DOCS = "file_docs"
# File-level keys rewritten in place when an unchanged document is found again (no re-encoding).
FILE_FIELDS = (FILE_HASH, FILE_DOCS, "root", "mtime", "size", "fs_path")


def is_complete(doc: StoredDocument, content_hash: str, pipeline: str) -> bool:
    """True when every chunk carries this hash + pipeline and indexes 0..n-1 are all present once."""
    if not doc.metadata:
        return False
    expected = doc.metadata[0].get(CHUNK_COUNT)
    return (
        all(m.get(CONTENT_HASH) == content_hash and m.get(PIPELINE) == pipeline for m in doc.metadata)
        and sorted(doc.chunk_indexes) == list(range(expected if isinstance(expected, int) else -1))
    )


def file_unchanged(stored: list[StoredDocument], file_hash: str, pipeline: str) -> bool:
    """Whether a file's stored documents are complete and were read from exactly these bytes."""
    if not stored:
        return False
    for doc in stored:
        meta = doc.metadata[0]
        if meta.get(FILE_HASH) != file_hash or meta.get(FILE_DOCS) != len(stored):
            return False
        if not is_complete(doc, meta.get(CONTENT_HASH, ""), pipeline):
            return False
    return True
