"""Search filters (source, folder, file type, page range, metadata, record fields) as Milvus boolean expressions
and as the same test in Python.

Works the same on embedded milvus-lite and a Milvus server: ``source == "..."``, ``source like "prefix%"``
(with ``%``, ``_`` and ``\\`` in the prefix escaped so they match literally), ``metadata["file_type"] == "pdf"``,
``metadata["page"] >= 3 and metadata["page"] <= 7`` and ``metadata["fields"]["key"] == value``. Values are
escaped literals, not filter templates: milvus-lite rejects those (see rag.store.knowledge_base.quote); and
milvus-lite refuses ``in [...]`` on a JSON key, so alternatives are written ``(a == x or a == y)``.

:meth:`SearchFilters.matches` applies the same conditions to a stored row in Python, with Milvus' semantics:
text equals only text (the text ``"5"`` is not the number 5), numbers compare as numbers with true and false
counted as 1 and 0 (Milvus' JSON comparisons), and a missing key fails the condition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rag.errors import InvalidInputError
from rag.store.knowledge_base import quote

MetadataValue = str | int | float | bool
# A record field's condition: one value, or several of which any may match.
FieldCondition = MetadataValue | Sequence[MetadataValue]
KEYS = ("source", "source_prefix", "metadata", "file_types", "page_from", "page_to", "fields")


def like_prefix(prefix: str) -> str:
    """A ``like`` pattern matching strings that start with ``prefix`` literally."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return quote(escaped + "%")


def literal(value: MetadataValue) -> str:
    """A Milvus expression literal for a metadata value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidInputError(f"metadata filter value {value!r} is not a finite number.")
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    raise InvalidInputError(
        f"metadata filter values must be text, numbers or true/false, not {type(value).__name__} ({value!r})."
    )


def same_value(stored: Any, wanted: MetadataValue) -> bool:
    """Milvus' ``==`` on a JSON value: text only equals text; numbers compare as numbers, with true and false
    counted as 1 and 0 (as in Python: 5 == 5.0, true == 1); lists, objects and null equal nothing."""
    if isinstance(wanted, str):
        return isinstance(stored, str) and stored == wanted
    return isinstance(stored, int | float) and stored == wanted


def text_alternatives(text: str) -> tuple[MetadataValue, ...]:
    """What a value typed on a command line or in a form can mean in a record file: the text itself, and the
    JSON number or true/false spelled that way (CSV fields are stored as text, JSON fields keep their type)."""
    values: list[MetadataValue] = [text]
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        values.append(lowered == "true")
    else:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            values.append(int(number) if number.is_integer() and "." not in text and "e" not in lowered else number)
    return tuple(values)


def file_type_name(text: str) -> str:
    """``.PDF`` / ``pdf`` -> ``pdf``: file types as the readers record them (lower case, no dot)."""
    name = text.strip().lstrip(".").lower()
    if not name:
        raise InvalidInputError("A file-type filter is empty: give a type such as pdf, md or docx.")
    return name


def parse_pages(text: str) -> tuple[int | None, int | None]:
    """``3-7`` -> (3, 7); ``5`` -> (5, 5); ``3-`` -> (3, None); ``-7`` -> (None, 7). Pages are 1-based."""
    parts = text.strip().split("-")
    try:
        if len(parts) == 1:
            first = last = int(parts[0])
        elif len(parts) == 2 and any(p.strip() for p in parts):
            first = int(parts[0]) if parts[0].strip() else None
            last = int(parts[1]) if parts[1].strip() else None
        else:
            raise ValueError
    except ValueError:
        raise InvalidInputError(f"{text!r} is not a page range: write 3-7, 5, 3- or -7.") from None
    return first, last


@dataclass(frozen=True)
class SearchFilters:
    """Restrict a search to chunks meeting every given condition.

    ``source``: the document's path relative to the ingested folder, exactly (e.g. ``docs/faq.md``).
    ``source_prefix``: sources starting with this text (e.g. ``docs/`` for a folder; see :meth:`folder`).
    ``metadata``: every key must equal its value in the chunk's stored metadata (e.g. ``{"lang": "zh"}``).
    ``file_types``: the file's type, any of these (``pdf``, ``md``, ``txt``, ``html``, ``docx``, ``csv``, ...).
    ``page_from`` / ``page_to``: the chunk's page (PDFs), inclusive; a chunk without a page is left out.
    ``fields``: a record file's (CSV, JSON, JSONL) other fields: each key must equal its value, or any of a
    list of values (``{"year": ("2020", 2020)}``; :func:`text_alternatives` makes such a list from a text).
    """

    source: str | None = None
    source_prefix: str | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)
    file_types: tuple[str, ...] = ()
    page_from: int | None = None
    page_to: int | None = None
    fields: Mapping[str, FieldCondition] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "file_types", tuple(file_type_name(t) for t in self.file_types))
        for name in ("page_from", "page_to"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidInputError(f"{name} must be a whole page number, not {value!r}.")
        if self.page_from is not None and self.page_to is not None and self.page_from > self.page_to:
            raise InvalidInputError(f"The page range {self.page_from}-{self.page_to} is empty: give the first page "
                                    "first (e.g. 3-7).")
        for kind, mapping in (("metadata", self.metadata), ("record field", self.fields)):
            for key in mapping:
                if not isinstance(key, str) or not key:
                    raise InvalidInputError(f"{kind} filter keys must be non-empty text, not {key!r}.")

    @classmethod
    def folder(cls, path: str) -> str:
        """The ``source_prefix`` of a folder: ``docs`` and ``docs/`` both give ``docs/`` (not ``docs2/...``)."""
        return path.rstrip("/") + "/"

    @classmethod
    def coerce(cls, value: SearchFilters | Mapping[str, Any] | None) -> SearchFilters:
        """Accept a SearchFilters, a dict with the same keys (e.g. :meth:`as_dict`'s), or None (no filter)."""
        if value is None:
            return cls()
        if isinstance(value, SearchFilters):
            return value
        unknown = set(value) - set(KEYS)
        if unknown:
            raise InvalidInputError(f"unknown filter key(s) {', '.join(sorted(unknown))}; use {', '.join(KEYS)}.")
        types = value.get("file_types") or ()
        return cls(value.get("source"), value.get("source_prefix"), dict(value.get("metadata") or {}),
                   (types,) if isinstance(types, str) else tuple(types), value.get("page_from"),
                   value.get("page_to"), dict(value.get("fields") or {}))

    def conditions(self) -> list[tuple[str, SearchFilters]]:
        """Each condition alone, named as :meth:`without` takes it: ``source``, ``source_prefix``, ``file_types``,
        ``pages``, ``metadata.KEY``, ``fields.KEY``."""
        out: list[tuple[str, SearchFilters]] = []
        if self.source is not None:
            out.append(("source", SearchFilters(source=self.source)))
        if self.source_prefix:
            out.append(("source_prefix", SearchFilters(source_prefix=self.source_prefix)))
        if self.file_types:
            out.append(("file_types", SearchFilters(file_types=self.file_types)))
        if self.page_from is not None or self.page_to is not None:
            out.append(("pages", SearchFilters(page_from=self.page_from, page_to=self.page_to)))
        out.extend((f"metadata.{k}", SearchFilters(metadata={k: v})) for k, v in self.metadata.items())
        out.extend((f"fields.{k}", SearchFilters(fields={k: v})) for k, v in self.fields.items())
        return out

    def without(self, names: Sequence[str]) -> SearchFilters:
        """These filters less the conditions ``names`` (as :meth:`conditions` names them)."""
        pages = "pages" in names
        return replace(
            self, source=None if "source" in names else self.source,
            source_prefix=None if "source_prefix" in names else self.source_prefix,
            file_types=() if "file_types" in names else self.file_types,
            page_from=None if pages else self.page_from, page_to=None if pages else self.page_to,
            metadata={k: v for k, v in self.metadata.items() if f"metadata.{k}" not in names},
            fields={k: v for k, v in self.fields.items() if f"fields.{k}" not in names},
        )

    def expression(self) -> str:
        """The Milvus filter expression; empty when nothing is filtered."""
        parts = []
        if self.source is not None:
            parts.append(f"source == {quote(self.source)}")
        if self.source_prefix:
            parts.append(f"source like {like_prefix(self.source_prefix)}")
        if self.file_types:
            parts.append(_any_of('metadata["file_type"]', self.file_types))
        if self.page_from is not None:
            parts.append(f'metadata["page"] >= {self.page_from}')
        if self.page_to is not None:
            parts.append(f'metadata["page"] <= {self.page_to}')
        for key, value in self.metadata.items():
            parts.append(f"metadata[{quote(key)}] == {literal(value)}")
        for key, condition in self.fields.items():
            parts.append(_any_of(f'metadata["fields"][{quote(key)}]', _values(condition)))
        return " and ".join(parts)

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Whether a stored row (``source`` and its ``metadata``) meets every condition, as :meth:`expression`
        does in Milvus."""
        source = str(row.get("source", ""))
        meta = row.get("metadata") or {}
        if self.source is not None and source != self.source:
            return False
        if self.source_prefix and not source.startswith(self.source_prefix):
            return False
        if self.file_types and not any(same_value(meta.get("file_type"), t) for t in self.file_types):
            return False
        if self.page_from is not None or self.page_to is not None:
            page = meta.get("page")
            if not isinstance(page, int | float):  # Milvus compares true / false as 1 / 0, and text not at all
                return False
            if (self.page_from is not None and page < self.page_from) or (
                    self.page_to is not None and page > self.page_to):
                return False
        if not all(same_value(meta.get(k), v) for k, v in self.metadata.items()):
            return False
        fields = meta.get("fields")
        fields = fields if isinstance(fields, Mapping) else {}
        return all(any(same_value(fields.get(k), v) for v in _values(c)) for k, c in self.fields.items())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (source, source_prefix, metadata, and the other kinds when set); :meth:`coerce`
        reads it back."""
        data: dict[str, Any] = {"source": self.source, "source_prefix": self.source_prefix,
                                "metadata": dict(self.metadata)}
        if self.file_types:
            data["file_types"] = list(self.file_types)
        if self.page_from is not None or self.page_to is not None:
            data.update(page_from=self.page_from, page_to=self.page_to)
        if self.fields:
            data["fields"] = {k: list(c) if _is_list(c) else c for k, c in self.fields.items()}
        return data


def _is_list(condition: FieldCondition) -> bool:
    return isinstance(condition, Sequence) and not isinstance(condition, str)


def _values(condition: FieldCondition) -> tuple[MetadataValue, ...]:
    values = tuple(condition) if _is_list(condition) else (condition,)  # type: ignore[arg-type]
    if not values:
        raise InvalidInputError("A record-field filter has no value to match.")
    return values  # type: ignore[return-value]


def _any_of(target: str, values: Sequence[MetadataValue]) -> str:
    """``target == v`` for one value, ``(target == a or target == b)`` for several."""
    tests = [f"{target} == {literal(v)}" for v in values]
    return tests[0] if len(tests) == 1 else "(" + " or ".join(tests) + ")"
