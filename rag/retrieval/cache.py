"""An in-process LRU cache of query encodings, so that repeating a query (paging, mode switches) skips the model."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from rag.encoder import Encoder, SparseVector


@dataclass(frozen=True)
class QueryEncoding:
    """One query's representations: dense vector, sparse weights and, when asked for, ColBERT token vectors."""

    dense: np.ndarray
    sparse: SparseVector
    colbert: np.ndarray | None = None


class QueryEncodingCache:
    """Least-recently-used cache of ``QueryEncoding`` by query text; safe to share between threads."""

    def __init__(self, encoder: Encoder, size: int = 256) -> None:
        self.encoder = encoder
        self.size = size
        self._items: OrderedDict[str, QueryEncoding] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, query: str, *, colbert: bool = False) -> tuple[QueryEncoding, bool]:
        """The encoding of ``query`` (with ColBERT vectors if asked) and whether it came from the cache."""
        with self._lock:
            hit = self._items.get(query)
            if hit is not None and (hit.colbert is not None or not colbert):
                self._items.move_to_end(query)
                return hit, True
        batch = self.encoder.encode([query], colbert=colbert)
        encoding = QueryEncoding(
            batch.dense[0], dict(batch.sparse[0]), batch.colbert[0] if batch.colbert is not None else None
        )
        with self._lock:
            self._items[query] = encoding
            self._items.move_to_end(query)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return encoding, False

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
