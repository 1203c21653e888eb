"""The scores of one retrieved chunk as a typed object, and the one place it becomes ``metadata["scores"]``.

What each score means is explained in :mod:`rag.retrieval.retriever`; how ``final`` is made from them in
:mod:`rag.retrieval.fusion`. Readers (CLI tables, web app, exports) use ``Scores.from_metadata(meta)``
instead of reading the dict by key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from rag.config import Fusion, Mode

RANKED_LISTS = ("dense", "sparse", "colbert", "rerank")


@dataclass
class Ranks:
    """1-based position of a chunk in the dense, sparse, ColBERT and cross-encoder orderings; None where a list
    lacks it."""

    dense: int | None = None
    sparse: int | None = None
    colbert: int | None = None
    rerank: int | None = None

    def present(self) -> Iterator[tuple[str, int]]:
        """``(list name, rank)`` for the lists that hold the chunk, in the order dense, sparse, colbert, rerank."""
        for name in RANKED_LISTS:
            rank = getattr(self, name)
            if rank is not None:
                yield name, rank


@dataclass
class Scores:
    """Every score of one chunk for one query, and the settings that made ``final``.

    ``colbert`` is None unless the chunk was ColBERT-reranked; ``rerank`` (the cross-encoder's sigmoid, 0..1,
    the value fusion uses) and ``rerank_raw`` (its logit) are None unless the chunk was cross-encoder-reranked;
    ``hybrid`` is None only when the weights of the scores present are all 0. ``mode``/``fusion`` may be None in
    data written by hand.
    """

    dense: float = 0.0
    sparse: float = 0.0
    colbert: float | None = None
    rerank: float | None = None
    rerank_raw: float | None = None
    hybrid: float | None = None
    rrf: float = 0.0
    ranks: Ranks = field(default_factory=Ranks)
    final: float = 0.0
    mode: Mode | None = None
    fusion: Fusion | None = None
    weights: dict[str, float] = field(default_factory=dict)

    def value(self, name: str) -> float | None:
        """A score by name (dense, sparse, colbert, rerank, rerank_raw, hybrid, rrf or final)."""
        return getattr(self, name) if name in SCORE_FIELDS else None

    def to_metadata(self) -> dict[str, Any]:
        """The dict stored in ``Document.metadata["scores"]``; ranks are flat keys (``dense_rank``, ...).

        ``rerank``, ``rerank_raw`` and ``rerank_rank`` are there only for a cross-encoder-reranked chunk.
        """
        reranked = self.rerank is not None
        rerank = {"rerank": self.rerank, "rerank_raw": self.rerank_raw} if reranked else {}
        rerank_rank = {"rerank_rank": self.ranks.rerank} if reranked else {}
        return {
            "dense": self.dense, "sparse": self.sparse, "colbert": self.colbert, **rerank, "hybrid": self.hybrid,
            "rrf": self.rrf, "dense_rank": self.ranks.dense, "sparse_rank": self.ranks.sparse,
            "colbert_rank": self.ranks.colbert, **rerank_rank, "final": self.final, "mode": self.mode,
            "fusion": self.fusion, "weights": dict(self.weights),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scores:
        """The inverse of :meth:`to_metadata`; keys that are missing take the defaults."""
        known = {f.name for f in fields(cls)} - {"ranks", "weights"}
        values = {name: data[name] for name in known if name in data}
        ranks = Ranks(**{name: data.get(f"{name}_rank") for name in RANKED_LISTS})
        return cls(**values, ranks=ranks, weights=dict(data.get("weights") or {}))

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> Scores:
        """The scores of a retrieved chunk, from its ``Document.metadata`` (or the same as a plain dict)."""
        return cls.from_dict(metadata.get("scores") or {})


SCORE_FIELDS = ("dense", "sparse", "colbert", "rerank", "rerank_raw", "hybrid", "rrf", "final")
