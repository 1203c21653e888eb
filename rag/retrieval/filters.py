"""Search filters (source, source prefix, metadata keys) as Milvus boolean expressions, safely quoted.

Works the same on embedded milvus-lite and a Milvus server: ``source == "..."``, ``source like "prefix%"``
(with ``%``, ``_`` and ``\\`` in the prefix escaped so they match literally) and ``metadata["key"] == value``.
Values are escaped literals, not filter templates: milvus-lite rejects those (see rag.store.knowledge_base.quote).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rag.errors import InvalidInputError
from rag.store.knowledge_base import quote

MetadataValue = str | int | float | bool


def like_prefix(prefix: str) -> str:
    """A ``like`` pattern matching strings that start with ``prefix`` literally."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return quote(escaped + "%")


def literal(value: MetadataValue) -> str:
    """A Milvus expression literal for a metadata value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidInputError(f"metadata filter value {value!r} is not a finite number.")
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    raise InvalidInputError(
        f"metadata filter values must be text, numbers or true/false, not {type(value).__name__} ({value!r})."
    )


@dataclass(frozen=True)
class SearchFilters:
    """Restrict a search to chunks of one source, of sources under a prefix, and/or with metadata values.

    ``source``: the document's path relative to the ingested folder, exactly (e.g. ``docs/faq.md``).
    ``source_prefix``: sources starting with this text (e.g. ``docs/`` for a folder).
    ``metadata``: every key must equal its value in the chunk's stored metadata (e.g. ``{"file_type": "pdf"}``).
    All given conditions must hold.
    """

    source: str | None = None
    source_prefix: str | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)

    @classmethod
    def coerce(cls, value: SearchFilters | Mapping[str, Any] | None) -> SearchFilters:
        """Accept a SearchFilters, a dict with the same keys, or None (no filter)."""
        if value is None:
            return cls()
        if isinstance(value, SearchFilters):
            return value
        unknown = set(value) - {"source", "source_prefix", "metadata"}
        if unknown:
            raise InvalidInputError(
                f"unknown filter key(s) {', '.join(sorted(unknown))}; use source, source_prefix or metadata."
            )
        return cls(value.get("source"), value.get("source_prefix"), dict(value.get("metadata") or {}))

    def expression(self) -> str:
        """The Milvus filter expression; empty when nothing is filtered."""
        parts = []
        if self.source is not None:
            parts.append(f"source == {quote(self.source)}")
        if self.source_prefix:
            parts.append(f"source like {like_prefix(self.source_prefix)}")
        for key, value in self.metadata.items():
            if not isinstance(key, str) or not key:
                raise InvalidInputError(f"metadata filter keys must be non-empty text, not {key!r}.")
            parts.append(f"metadata[{quote(key)}] == {literal(value)}")
        return " and ".join(parts)

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Whether a stored chunk (its ``source`` and ``metadata``) passes, as :meth:`expression` does in Milvus.

        The in-process exact search (rag.store.exact_index) filters with this; a new filter kind changes both."""
        if self.source is not None and row.get("source") != self.source:
            return False
        if self.source_prefix and not str(row.get("source", "")).startswith(self.source_prefix):
            return False
        stored = row.get("metadata") or {}
        return all(key in stored and _same_json_value(stored[key], value) for key, value in self.metadata.items())

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "source_prefix": self.source_prefix, "metadata": dict(self.metadata)}


def _same_json_value(stored: Any, wanted: MetadataValue) -> bool:
    """Milvus' ``metadata["key"] == literal``: numbers equal numerically (3 == 3.0), booleans only booleans."""
    if isinstance(wanted, bool) or isinstance(stored, bool):
        return isinstance(wanted, bool) and isinstance(stored, bool) and stored == wanted
    if isinstance(wanted, int | float):
        return isinstance(stored, int | float) and stored == wanted
    return isinstance(stored, str) and stored == wanted
