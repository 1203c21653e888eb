"""Where a retrieved chunk comes from (source file, document, page, heading, position), as a typed object.

Built from a stored row in one place (:meth:`Provenance.from_row`) and written into ``Document.metadata`` by
:meth:`Provenance.to_metadata`; readers (prompts, CLI tables, web app, exports) use
:meth:`Provenance.from_metadata` instead of reading keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Provenance:
    """``source``: the file name; ``doc_id``: the document (a file, or ``file.csv#key`` for a record);
    ``chunk_index``: 0-based position of the chunk in its document; ``title``; ``page`` (1-based, PDFs; a
    PowerPoint chunk's slide) and ``heading`` (the heading path, Markdown/HTML/Word) when the reader recorded one,
    else None; ``file_type``: the reader's (``pdf``, ``pptx``, ...), from the stored metadata."""

    source: str
    doc_id: str = ""
    chunk_index: int = 0
    title: str = ""
    page: int | None = None
    heading: str | None = None
    file_type: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Provenance:
        """From a chunk row as stored in Milvus (page and heading live in its ``metadata`` JSON)."""
        stored = row.get("metadata") or {}
        return cls(source=row["source"], doc_id=row["doc_id"], chunk_index=row["chunk_index"],
                   title=row.get("title", ""), page=stored.get("page"), heading=stored.get("heading"),
                   file_type=stored.get("file_type"))

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> Provenance:
        """From a retrieved Document's metadata (or a dict with the same keys); missing keys take the defaults. The
        file type is the stored metadata's (``metadata["metadata"]["file_type"]``)."""
        stored = metadata.get("metadata")
        file_type = stored.get("file_type") if isinstance(stored, Mapping) else None
        return cls(source=str(metadata.get("source") or ""), doc_id=str(metadata.get("doc_id") or ""),
                   chunk_index=int(metadata.get("chunk_index") or 0), title=str(metadata.get("title") or ""),
                   page=metadata.get("page"), heading=metadata.get("heading"),
                   file_type=file_type if isinstance(file_type, str) else None)

    def to_metadata(self) -> dict[str, Any]:
        """The provenance keys of ``Document.metadata``: doc_id, source, chunk_index, title, page, heading."""
        return {"doc_id": self.doc_id, "source": self.source, "chunk_index": self.chunk_index, "title": self.title,
                "page": self.page, "heading": self.heading}

    @property
    def has_page(self) -> bool:
        return self.page not in (None, "")

    @property
    def page_unit(self) -> str:
        """What ``page`` counts: ``slide`` for a PowerPoint chunk, else ``page``."""
        return "slide" if self.file_type == "pptx" else "page"

    @property
    def page_label(self) -> str:
        """The short form terminal tables show: ``p.3``, ``slide 3`` for a PowerPoint chunk, "" without a page."""
        if not self.has_page:
            return ""
        return f"slide {self.page}" if self.page_unit == "slide" else f"p.{self.page}"
