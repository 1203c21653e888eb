"""Every chunk's dense vector and sparse weights of one collection, in memory, for exact top-k searches.

Dense: a float32 matrix (as Milvus stores the vectors), scored with one matrix-vector product; the rows near the
k-th score are scored again in float64 (as :func:`rag.retrieval.scores.dense_scores` does), so the top k is the
exact ranking's whatever float32's rounding. Sparse: a scipy CSC matrix over the token ids (float64 weights),
so a query reads only the columns of its own tokens, ``sum over shared tokens of query weight x chunk weight``.

Rows are patched in place: an upsert appends the new version and marks the old one dead, a delete marks rows
dead; dead rows are compacted away once they are a quarter of the matrix. Filters are evaluated per row by the
caller's predicate (``RowFilter.matches``) once per filter and cached until the next change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse as sp

Row = Mapping[str, Any]
# What the index keeps of each chunk: all that a search scores and filters on, and a document listing needs.
ROW_FIELDS = ["id", "doc_id", "source", "chunk_index", "title", "metadata", "dense", "sparse"]
ATTRS = ("doc_id", "source", "chunk_index", "title", "metadata")  # kept per chunk besides id and vectors
FLOAT32_EPS = 2.0**-24
SCORE_BLOCK = 4096  # rows per float64 block when every chunk is scored (a 100k x 1024 copy would be 800 MB)


@dataclass(frozen=True)
class ChunkScores:
    """Every live chunk's exact dense and sparse score for one query (float64, as rag.retrieval.scores computes
    them), and which of them a filter keeps."""

    ids: list[str]
    dense: np.ndarray
    sparse: np.ndarray
    kept: np.ndarray  # bool: the chunks the search filter keeps


class ExactIndex:
    """Dense and sparse vectors of a collection's chunks with their id, doc_id, source and metadata."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.ids: list[str] = []
        self._position: dict[str, int] = {}
        self._by_doc: dict[str, set[int]] = {}
        self._attrs: list[dict[str, Any]] = []  # source and metadata, what filters read
        self._alive = np.zeros(0, bool)
        self._dense = np.zeros((0, dim), np.float32)
        self._sparse_rows: list[tuple[np.ndarray, np.ndarray]] = []
        self._csc: sp.csc_matrix | None = None
        self._masks: dict[str, np.ndarray] = {}
        self._norm_max = 0.0

    def __len__(self) -> int:
        """Live chunks."""
        return len(self._position)

    @classmethod
    def of_rows(
        cls, dim: int, ids: Sequence[str], attrs: Sequence[dict[str, Any]], dense: np.ndarray,
        sparse_rows: Sequence[tuple[np.ndarray, np.ndarray]], norm_max: float | None = None,
    ) -> ExactIndex:
        """An index of live chunks given as :meth:`live` returns them (rag.store.exact_snapshot reads them back);
        ``norm_max``: :attr:`norm_max` of the index they came from (else computed: a second at 100k x 1024-d)."""
        index = cls(dim)
        index._install(list(ids), list(attrs), np.asarray(dense, np.float32).reshape(len(ids), dim),
                       list(sparse_rows))
        if norm_max is None:
            norm_max = float(np.linalg.norm(index._dense, axis=1).max()) if len(index.ids) else 0.0
        index._norm_max = norm_max
        return index

    @property
    def norm_max(self) -> float:
        """At least the largest norm of a dense row (it bounds float32's rounding in :meth:`dense_top`)."""
        return self._norm_max

    def live(self) -> tuple[list[str], list[dict[str, Any]], np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """The live chunks' ids, attributes (:data:`ATTRS`), dense matrix and sparse rows (token ids, weights), in
        order: what :meth:`of_rows` takes."""
        n = len(self.ids)
        if self._alive[:n].all():  # nothing deleted since the last compaction: no 400 MB copy at 100k x 1024-d
            return list(self.ids), list(self._attrs), self._dense[:n], list(self._sparse_rows)
        keep = np.flatnonzero(self._alive[:n])
        positions = keep.tolist()
        return ([self.ids[i] for i in positions], [self._attrs[i] for i in positions], self._dense[keep],
                [self._sparse_rows[i] for i in positions])

    # -- writes ------------------------------------------------------------------------------------

    def add(self, rows: Iterable[Row]) -> None:
        """Insert or replace chunks (rows with :data:`ROW_FIELDS`; sparse as ``{token_id: weight}``)."""
        rows = list(rows)
        if not rows:
            return
        self.remove_ids([str(r["id"]) for r in rows])
        start = len(self.ids)
        dense = np.asarray([r["dense"] for r in rows], np.float32).reshape(len(rows), self.dim)
        self._dense = _grow(self._dense, start, dense)
        self._alive = _grow(self._alive, start, np.ones(len(rows), bool))
        self._norm_max = max(self._norm_max, float(np.linalg.norm(dense, axis=1).max()))
        for offset, row in enumerate(rows):
            position = start + offset
            chunk_id, doc_id = str(row["id"]), str(row.get("doc_id", ""))
            self.ids.append(chunk_id)
            self._position[chunk_id] = position
            self._by_doc.setdefault(doc_id, set()).add(position)
            self._attrs.append({"doc_id": doc_id, "source": row.get("source", ""),
                                "chunk_index": int(row.get("chunk_index", 0)), "title": row.get("title", ""),
                                "metadata": row.get("metadata")})
            weights = row.get("sparse") or {}
            self._sparse_rows.append((np.fromiter((int(t) for t in weights), np.int64, len(weights)),
                                      np.fromiter((float(w) for w in weights.values()), np.float64, len(weights))))
        self._changed()

    def remove_ids(self, ids: Iterable[str]) -> None:
        positions = [p for p in (self._position.get(str(i)) for i in ids) if p is not None]
        self._remove(positions)

    def remove_documents(self, doc_ids: Iterable[str]) -> None:
        positions = [p for doc_id in doc_ids for p in self._by_doc.get(str(doc_id), ())]
        self._remove(positions)

    def _remove(self, positions: Sequence[int]) -> None:
        if not positions:
            return
        for position in positions:
            self._alive[position] = False
            attrs = self._attrs[position]
            del self._position[self.ids[position]]
            self._by_doc[attrs["doc_id"]].discard(position)
            if not self._by_doc[attrs["doc_id"]]:
                del self._by_doc[attrs["doc_id"]]
        if len(self.ids) - len(self._position) > max(1024, len(self.ids) // 4):
            self._compact()
        self._changed()

    def _compact(self) -> None:
        self._install(*self.live())

    def _install(self, ids: list[str], attrs: list[dict[str, Any]], dense: np.ndarray,
                 sparse_rows: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """These live chunks as the whole index, and its look-ups (by id, by document) built from them."""
        self.ids, self._attrs, self._dense, self._sparse_rows = ids, attrs, dense, sparse_rows
        self._alive = np.ones(len(ids), bool)
        self._position = {chunk_id: i for i, chunk_id in enumerate(ids)}
        self._by_doc = {}
        for i, attr in enumerate(attrs):
            self._by_doc.setdefault(attr["doc_id"], set()).add(i)

    def _changed(self) -> None:
        self._csc = None
        self._masks.clear()

    # -- searches ----------------------------------------------------------------------------------

    def mask(self, key: str, matches: Callable[[Row], bool] | None) -> np.ndarray:
        """Live rows that ``matches`` keeps (all live rows without it), cached under ``key`` until a change."""
        n = len(self.ids)
        if matches is None:
            return self._alive[:n]
        cached = self._masks.get(key)
        if cached is None:
            kept = np.fromiter((matches(a) for a in self._attrs), bool, n)
            cached = self._masks[key] = kept & self._alive[:n]
        return cached

    def dense_top(self, query: Sequence[float], limit: int, valid: np.ndarray) -> list[str]:
        """Ids of the ``limit`` valid chunks with the largest inner product with ``query``, best first (ties by id)."""
        q = np.asarray(query, np.float32)
        n = len(self.ids)
        approx = self._dense[:n] @ q
        # float32's rounding of a dim-long dot product stays within dim * eps * |q| * |row|: every row within
        # that of the k-th score is scored again in float64, so the cut is the exact ranking's.
        slack = 2 * self.dim * FLOAT32_EPS * float(np.linalg.norm(q)) * max(self._norm_max, 1.0)
        rows = _near_top(approx, valid, limit, slack)
        exact = self._dense[rows].astype(np.float64) @ np.asarray(query, np.float64)
        return self._best(rows, exact, limit)

    def sparse_top(self, query: Mapping[int, float], limit: int, valid: np.ndarray) -> list[str]:
        """Ids of the ``limit`` valid chunks sharing a token with ``query`` with the largest lexical score."""
        scores = self.sparse_scores(query)
        rows = _near_top(scores, valid & (scores > 0), limit, 0.0)
        return self._best(rows, scores[rows], limit)

    def sparse_scores(self, query: Mapping[int, float]) -> np.ndarray:
        """The lexical score of every row (dead ones included): sum over shared tokens of the weights' product."""
        csc = self._matrix()
        tokens = np.asarray([int(t) for t in query], np.int64)
        weights = np.asarray([float(w) for w in query.values()], np.float64)
        inside = (tokens >= 0) & (tokens < csc.shape[1])
        if not inside.any():
            return np.zeros(csc.shape[0], np.float64)
        return np.asarray(csc[:, tokens[inside]] @ weights[inside], np.float64).ravel()

    def scores(self, dense: Sequence[float], sparse: Mapping[int, float], valid: np.ndarray) -> ChunkScores:
        """Every live chunk's exact dense score (float64) and lexical score for a query; ``valid`` (a :meth:`mask`)
        says which the search filter keeps."""
        n = len(self.ids)
        q = np.asarray(dense, np.float64)
        dense_all = np.empty(n, np.float64)
        for start in range(0, n, SCORE_BLOCK):
            dense_all[start : start + SCORE_BLOCK] = self._dense[start : min(n, start + SCORE_BLOCK)].astype(
                np.float64) @ q
        live = np.flatnonzero(self._alive[:n])
        return ChunkScores([self.ids[i] for i in live], dense_all[live], self.sparse_scores(sparse)[live],
                           valid[live])

    def live_ids(self) -> list[str]:
        """The ids of every live chunk."""
        return [self.ids[i] for i in np.flatnonzero(self._alive[: len(self.ids)]).tolist()]

    def document_ids(self, doc_id: str) -> list[str]:
        """The ids of the live chunks of ``doc_id``."""
        return [self.ids[position] for position in sorted(self._by_doc.get(doc_id, ()))]

    def rows(self, ids: Sequence[str], fields: Sequence[str]) -> list[dict[str, Any]]:
        """The stored ``fields`` (of :data:`ROW_FIELDS`) and id of live chunks ``ids``, in order (dense as a float32
        array, sparse as ``{token_id: weight}``)."""
        out = []
        for chunk_id in ids:
            position = self._position.get(chunk_id)
            if position is None:
                continue
            attrs, row = self._attrs[position], {"id": chunk_id}
            for name in fields:
                if name == "dense":
                    row[name] = self._dense[position].copy()
                elif name == "sparse":
                    tokens, weights = self._sparse_rows[position]
                    row[name] = dict(zip(tokens.tolist(), weights.tolist(), strict=True))
                elif name != "id":
                    row[name] = attrs[name]
            out.append(row)
        return out

    def _best(self, rows: np.ndarray, scores: np.ndarray, limit: int) -> list[str]:
        order = sorted(range(len(rows)), key=lambda i: (-scores[i], self.ids[rows[i]]))
        return [self.ids[rows[i]] for i in order[:limit]]

    def _matrix(self) -> sp.csc_matrix:
        if self._csc is None:
            n = len(self.ids)
            lengths = np.fromiter((len(t) for t, _ in self._sparse_rows), np.int64, n)
            indptr = np.zeros(n + 1, np.int64)
            np.cumsum(lengths, out=indptr[1:])
            tokens = np.concatenate([t for t, _ in self._sparse_rows]) if n else np.zeros(0, np.int64)
            weights = np.concatenate([w for _, w in self._sparse_rows]) if n else np.zeros(0, np.float64)
            width = int(tokens.max()) + 1 if len(tokens) else 1
            self._csc = sp.csr_matrix((weights, tokens, indptr), shape=(n, width)).tocsc()
        return self._csc


def _near_top(scores: np.ndarray, valid: np.ndarray, limit: int, slack: float) -> np.ndarray:
    """Valid rows whose score is within ``slack`` of the ``limit``-th best valid score (all valid rows if fewer)."""
    candidates = np.flatnonzero(valid)
    if len(candidates) <= limit:
        return candidates
    values = scores[candidates]
    kth = np.partition(values, len(values) - limit)[len(values) - limit]
    return candidates[values >= kth - slack]


def _grow(array: np.ndarray, used: int, extra: np.ndarray) -> np.ndarray:
    """``array[:used]`` followed by ``extra``, reallocating with room to spare when full (amortised appends)."""
    needed = used + len(extra)
    if needed > len(array):
        bigger = np.zeros((max(needed, 2 * len(array), 1024), *array.shape[1:]), array.dtype)
        bigger[:used] = array[:used]
        array = bigger
    array[used:needed] = extra
    return array
