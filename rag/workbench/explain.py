"""Explain a miss: why one chunk of a knowledge base was (or was not) retrieved for a query.

Everything is computed with the retriever's own code: the chunk's scores from its stored vectors by
:mod:`rag.retrieval.scores` and :class:`rag.retrieval.fusion.ScoreFusion`, its candidate-list positions from
the same Milvus searches, the verdict from a real :meth:`HybridRetriever.search`. Ranks are exact: every
chunk Milvus returns (up to its limit of 16384) is rescored from its stored vectors and the chunks scoring
strictly higher are counted. A knowledge base searched exactly in process (embedded, within
``retrieval.exact_max_chunks``) has every chunk's exact scores in memory, so its ranks and list places are exact at
any depth, and only the lists' heads are read from Milvus (:func:`rag.workbench.fixes.head_rows`);
otherwise, past that limit the rank is given as an exact bound ("below rank 16384"). With
search filters, ranks are among the chunks the filters keep, as the search sees them. ``dense`` and ``sparse``
rank those scores; ``hybrid_rank``, ``rrf_rank`` and ``final_rank`` rank the fused scores as if the candidate
lists were unlimited (:mod:`rag.workbench.kb_ranks` says what that means next to the search's own top_k cut).

The cuts, in the order a search applies them (``lost_at``):

- ``filters``: the retriever's search filters (source, source prefix, metadata) leave the chunk out;
- ``candidates``: the chunk is in none of the Milvus lists the mode uses (``top_k x candidate_factor`` each);
- ``min_score``: it was a candidate but its ``final`` is below ``min_score``;
- ``top_k``: it was a candidate above ``min_score`` but ranked below ``top_k`` after fusion;
- ``retrieved``: it was not missed (``retrieved_rank`` says where).

Each miss comes with the smallest change that would bring the chunk in (``fixes``, found and checked by
:mod:`rag.workbench.fixes`), each checked by running the search again with it: outside the lists, the smallest
``candidate_factor`` that makes it a candidate; below ``min_score``, its ``final`` rounded down; below
``top_k``, the sparse weight nearest the current one that ranks it within ``top_k`` (weighted hybrid), with rrf
fusion the weighted fusion (with the current weights, else with the sparse weight nearest them that fits) and
the ``rrf_k`` nearest the current one that does, and the smallest ``top_k`` that reaches it (a larger top_k
also brings more candidates). Left out by the filters, ``dropped_by`` names the filters that drop it and
``filter_fix`` is the search without them, run again (kept apart from ``fixes``: it changes what is searched,
not how it ranks). ``neighbours`` scores the chunks before and after it in its document: when one scores
higher, the answer may span the two.

The verdict always comes from the real search. With ColBERT reranking, the scores of a chunk that was not
retrieved are those before the rerank (no colbert score), and its ``min_score`` / ``top_k`` diagnosis too. With
cross-encoder reranking the same holds, and ``rerank`` gives the chunk's cross-encoder score anyway: the search's
own for a retrieved chunk (it is in ``scores`` and ``final``), else computed for the explanation (not in ``final``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rag.config import MILVUS_MAX_LIMIT
from rag.errors import InvalidInputError
from rag.rerank import RerankScore, load_reranker
from rag.retrieval.cache import QueryEncoding
from rag.retrieval.chunk_scores import Ranks, Scores
from rag.retrieval.fusion import ScoreFusion
from rag.retrieval.results import RetrievalResult
from rag.retrieval.retriever import OUTPUT_FIELDS, HybridRetriever
from rag.retrieval.scores import decode_token, dense_scores, lexical_score, matched_terms
from rag.store.knowledge_base import KnowledgeBase, quote
from rag.store.schema import decode_sparse
from rag.workbench.fixes import RRF_KS, SPARSE_WEIGHTS, Fix, FixFinder, dropping_filters, head_rows
from rag.workbench.kb_ranks import FullListRanks, ListRank

__all__ = [
    "RRF_KS", "SPARSE_WEIGHTS", "Explanation", "Fix", "ListRank", "Neighbour", "explain", "explain_document",
]

MISSING_TERMS = 10
WINDOW_FIELDS = ["id", "dense", "sparse"]  # all that ranking Milvus' full lists needs (no text: 16384 rows each)
NEIGHBOUR_ROWS = 16  # at most 2 chunks (before, after); a few more if a document was stored twice
LISTS_OF_MODE = {"dense": ("dense",), "sparse": ("sparse",), "hybrid": ("dense", "sparse")}


@dataclass
class Neighbour:
    """The chunk just before or after in the same document, scored the same way for the same query."""

    relation: str  # "before" or "after"
    chunk_id: str
    chunk_index: int
    scores: Scores
    higher: bool
    retrieved_rank: int | None = None


@dataclass
class Explanation:
    """Why ``chunk_id`` was or was not retrieved for ``query`` with these retrieval settings."""

    query: str
    kb: str
    chunk_id: str
    source: str
    chunk_index: int
    text: str
    scores: Scores
    dense: ListRank
    sparse: ListRank
    matched_terms: list[dict[str, Any]]
    missing_terms: list[dict[str, Any]]
    candidate_limit: int
    lost_at: str
    reason: str
    retrieved_rank: int | None = None
    pool_rank: int | None = None
    fixes: list[Fix] = field(default_factory=list)
    neighbours: list[Neighbour] = field(default_factory=list)
    hybrid_rank: ListRank | None = None  # None only when the dense and sparse weights are both 0
    rrf_rank: ListRank | None = None
    final_rank: ListRank | None = None
    dropped_by: list[str] = field(default_factory=list)  # the search filters that leave it out
    filter_fix: Fix | None = None  # the search without those filters, run again
    rerank: RerankScore | None = None  # the cross-encoder's score (retrieval.rerank: cross-encoder), else None

    @property
    def spans_neighbour(self) -> bool:
        """Whether a chunk next to it in its document scores higher (the answer may run over two chunks)."""
        return any(n.higher for n in self.neighbours)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scores"] = self.scores.to_metadata()
        data["fixes"] = [{**asdict(f), "works": f.works} for f in self.fixes]
        data["filter_fix"] = None if self.filter_fix is None else {**asdict(self.filter_fix),
                                                                   "works": self.filter_fix.works}
        data["neighbours"] = [{**asdict(n), "scores": n.scores.to_metadata()} for n in self.neighbours]
        data["spans_neighbour"] = self.spans_neighbour
        return data


@dataclass
class _QueryView:
    """What explaining any chunk for one query needs, computed once: the encoding, Milvus' full dense and sparse
    lists with their exact scores, the fusion rule and the real search's result."""

    q: QueryEncoding
    expr: str
    dense_hits: list[dict[str, Any]]
    sparse_hits: list[dict[str, Any]]
    dense_values: list[float]
    sparse_values: list[float]
    rule: ScoreFusion
    limit: int
    result: RetrievalResult
    full: FullListRanks

    @classmethod
    def of(cls, retriever: HybridRetriever, query: str) -> _QueryView:
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("The query is empty: type the question the chunk should answer.")
        kb, cfg = retriever.knowledge_base, retriever.settings
        q, _ = retriever.query_cache.get(query)
        expr = retriever.filters.expression() if retriever.filters is not None else ""
        where = retriever.filters if expr else ""  # the same store search as the retriever's: exact when it is
        rule = ScoreFusion.from_settings(cfg)
        every = kb.exact_scores(q.dense.tolist(), q.sparse, where, exact_max_chunks=cfg.exact_max_chunks)
        # With every chunk's exact scores in memory, ranks and places come from them, and the lists' heads are all
        # the rows needed (candidates, and the top_k fix's longer lists); else Milvus' whole windows are ranked.
        window = MILVUS_MAX_LIMIT if every is None else head_rows(cfg.candidate_limit, cfg.candidate_factor)
        with ThreadPoolExecutor(max_workers=1) as background:  # Milvus runs the two searches at once
            sparse = None
            if q.sparse:
                sparse = background.submit(kb.search, "sparse", q.sparse, window, where, WINDOW_FIELDS,
                                           params=cfg.search_params.sparse, exact_max_chunks=cfg.exact_max_chunks)
            dense_hits = kb.search("dense", q.dense.tolist(), window, where, WINDOW_FIELDS,
                                   params=cfg.search_params.dense, exact_max_chunks=cfg.exact_max_chunks)
            sparse_hits = sparse.result() if sparse is not None else []
        # every chunk's exact scores when the search is exact in process, else both lists' chunks scored once
        full = FullListRanks.of_scores(every, rule) if every is not None else FullListRanks(dense_hits, sparse_hits,
                                                                                             q, rule)
        return cls(
            q=q, expr=expr, dense_hits=dense_hits, sparse_hits=sparse_hits,
            dense_values=full.values("dense", dense_hits), sparse_values=full.values("sparse", sparse_hits),
            rule=rule, limit=cfg.candidate_limit, result=retriever.search(query), full=full,
        )

    def kept(self, kb: KnowledgeBase, chunk_id: str) -> bool:
        """Whether the search filters keep the chunk: known in process (the exact scores cover what they keep),
        else asked of Milvus."""
        if self.full.places is not None:
            return chunk_id in self.full.index
        return bool(kb.page(f"id == {quote(chunk_id)} and ({self.expr})", ["id"], limit=1))


def explain_document(retriever: HybridRetriever, query: str, source: str) -> list[Explanation]:
    """:func:`explain` for every chunk of the document(s) from ``source``, in document order (one set of searches)."""
    view = _QueryView.of(retriever, query)
    rows = retriever.knowledge_base.rows(f"source == {quote(source)}", OUTPUT_FIELDS)
    if not rows:
        raise InvalidInputError(f"Knowledge base {retriever.knowledge_base.name!r} has no document {source!r}.")
    rows.sort(key=lambda r: (r["doc_id"], r["chunk_index"]))
    return [_explain_row(retriever, query, row, view) for row in rows]


def explain(retriever: HybridRetriever, query: str, chunk_id: str) -> Explanation:
    """Explain where ``chunk_id`` stands for ``query`` with ``retriever``'s settings (see the module docstring)."""
    view = _QueryView.of(retriever, query)
    found = list(retriever.knowledge_base.rows_by_id([chunk_id], OUTPUT_FIELDS).values())
    if not found:
        raise InvalidInputError(f"Knowledge base {retriever.knowledge_base.name!r} has no chunk with id {chunk_id!r}.")
    return _explain_row(retriever, query, found[0], view)


def _explain_row(retriever: HybridRetriever, query: str, row: dict[str, Any], view: _QueryView) -> Explanation:
    kb, cfg = retriever.knowledge_base, retriever.settings
    chunk_id = row["id"]
    q, expr, dense_hits, sparse_hits = view.q, view.expr, view.dense_hits, view.sparse_hits
    chunk_sparse = decode_sparse(row.get("sparse") or {})
    dense_value = float(dense_scores(q.dense, np.asarray([row["dense"]], np.float32))[0])
    sparse_value = lexical_score(q.sparse, chunk_sparse)
    dense_rank = _list_rank(chunk_id, dense_value, dense_hits, view.dense_values, view.full, "dense")
    sparse_rank = _list_rank(chunk_id, sparse_value, sparse_hits, view.sparse_values, view.full, "sparse")
    limit, rule = view.limit, view.rule
    in_list = {"dense": _within(dense_rank.position, limit), "sparse": _within(sparse_rank.position, limit)}
    scores = Scores(dense=dense_value, sparse=sparse_value, ranks=Ranks(
        dense=dense_rank.position if in_list["dense"] else None,
        sparse=sparse_rank.position if in_list["sparse"] else None))
    rule.fuse(scores)

    result = view.result
    hit = next((d for d in result.documents if d.metadata["id"] == chunk_id), None)
    retrieved = None if hit is None else int(hit.metadata["rank"])
    if hit is not None:
        scores = Scores.from_metadata(hit.metadata)  # the search's own numbers, ColBERT included
    used = LISTS_OF_MODE[cfg.mode]
    pool_rank = None
    if retrieved is not None:
        lost_at, reason = "retrieved", f"retrieved at rank {retrieved} of {cfg.top_k}."
    elif expr and not view.kept(kb, chunk_id):
        dropped_by = dropping_filters(retriever, chunk_id)
        lost_at, reason = "filters", (f"the search filters ({expr}) leave it out: "
                                      f"{' and '.join(expression for _, expression in dropped_by)}.")
    elif not any(in_list[name] for name in used):
        lost_at = "candidates"
        where = " and ".join(f"{name} {(dense_rank if name == 'dense' else sparse_rank).describe()}" for name in used)
        reason = (f"outside the {' and '.join(used)} candidate list{'s' if len(used) > 1 else ''} "
                  f"(top_k {cfg.top_k} x candidate_factor {cfg.candidate_factor} = {limit}): {where}.")
    elif cfg.min_score > 0 and scores.final < cfg.min_score:
        lost_at, reason = "min_score", f"final {scores.final:.4f} is below min_score {cfg.min_score:g}."
    else:
        pool = HybridRetriever.rank_hits(dense_hits[:limit], sparse_hits[:limit], q, rule)
        pool_rank = 1 + next(i for i, c in enumerate(pool) if c.row["id"] == chunk_id)
        lost_at, reason = "top_k", f"ranked {pool_rank} after fusion, below top_k {cfg.top_k}."

    terms = matched_terms(q.sparse, chunk_sparse, retriever.encoder.tokenizer)
    missing = sorted(((int(t), float(w)) for t, w in q.sparse.items() if t not in chunk_sparse),
                     key=lambda item: (-item[1], item[0]))[:MISSING_TERMS]
    explanation = Explanation(
        query=query, kb=kb.name, chunk_id=chunk_id, source=row.get("source", ""),
        chunk_index=int(row.get("chunk_index", 0)), text=row.get("text", ""), scores=scores, dense=dense_rank,
        sparse=sparse_rank, matched_terms=terms,
        missing_terms=[{"term": decode_token(retriever.encoder.tokenizer, t), "token_id": t, "query_weight": w}
                       for t, w in missing],
        candidate_limit=limit, lost_at=lost_at, reason=reason, retrieved_rank=retrieved, pool_rank=pool_rank,
    )
    if cfg.cross_encoder_rerank:
        explanation.rerank = _cross_encoder_score(retriever, query, row, scores)
    full = view.full.ranks(chunk_id, scores, dense_place=dense_rank.rank if dense_rank.exact else None,
                           sparse_place=sparse_rank.rank if sparse_rank.exact else None)
    explanation.hybrid_rank, explanation.rrf_rank, explanation.final_rank = full["hybrid"], full["rrf"], full["final"]
    retrieved_ranks = {d.metadata["id"]: int(d.metadata["rank"]) for d in result.documents}
    explanation.neighbours = _neighbours(retriever, row, q, rule, scores, dense_hits, sparse_hits, limit,
                                         retrieved_ranks)
    if explanation.spans_neighbour:
        explanation.reason += " A chunk next to it in its document scores higher: the answer may span both."
    fixes = FixFinder(retriever, query, chunk_id)
    if lost_at == "filters":
        explanation.dropped_by = [expression for _, expression in dropped_by]
        explanation.filter_fix = fixes.without_filters([name for name, _ in dropped_by])
    elif lost_at == "candidates":
        explanation.fixes.append(fixes.candidate_factor(dense_rank.position, sparse_rank.position, used))
    elif lost_at == "min_score":
        explanation.fixes.append(fixes.min_score(scores.final))
    elif lost_at == "top_k" and pool_rank is not None:
        explanation.fixes.extend(fixes.fusion(pool, rule))
        explanation.fixes.append(fixes.top_k(pool_rank, dense_hits, sparse_hits, q, rule))
    return explanation


def _neighbours(retriever: HybridRetriever, row: dict[str, Any], q: QueryEncoding, rule: ScoreFusion, scores: Scores,
                dense_hits: list[dict[str, Any]], sparse_hits: list[dict[str, Any]], limit: int,
                retrieved: dict[str, int]) -> list[Neighbour]:
    """The chunks before and after ``row`` in its document, with the scores a search gives them."""
    kb, index, doc_id = retriever.knowledge_base, int(row.get("chunk_index", 0)), str(row.get("doc_id", ""))
    ids = kb.document_chunk_ids(doc_id, exact_max_chunks=retriever.settings.exact_max_chunks)
    if ids is not None:  # the in-process index knows the document's chunks: look them up by id (no scan)
        indexes = kb.rows_by_id(ids, ["chunk_index"]).values()
        near = [r["id"] for r in indexes if r["chunk_index"] in (index - 1, index + 1)]
        rows = list(kb.rows_by_id(near, OUTPUT_FIELDS).values())
    else:
        expr = f"doc_id == {quote(doc_id)} and chunk_index in [{index - 1}, {index + 1}]"
        rows = kb.page(expr, OUTPUT_FIELDS, limit=NEIGHBOUR_ROWS)
    dense_at = {h["id"]: i for i, h in enumerate(dense_hits[:limit], start=1)}
    sparse_at = {h["id"]: i for i, h in enumerate(sparse_hits[:limit], start=1)}
    out = []
    for other in sorted(rows, key=lambda r: r["chunk_index"]):
        mine = Scores(dense=float(dense_scores(q.dense, np.asarray([other["dense"]], np.float32))[0]),
                      sparse=lexical_score(q.sparse, decode_sparse(other.get("sparse") or {})),
                      ranks=Ranks(dense=dense_at.get(other["id"]), sparse=sparse_at.get(other["id"])))
        rule.fuse(mine)
        out.append(Neighbour(relation="before" if other["chunk_index"] < index else "after", chunk_id=other["id"],
                             chunk_index=int(other["chunk_index"]), scores=mine, higher=mine.final > scores.final,
                             retrieved_rank=retrieved.get(other["id"])))
    return out


def _cross_encoder_score(retriever: HybridRetriever, query: str, row: dict[str, Any], scores: Scores) -> RerankScore:
    """The search's own cross-encoder score of a reranked chunk; for any other chunk, the cross-encoder run on it."""
    if scores.rerank is not None and scores.rerank_raw is not None:
        return RerankScore(scores.rerank_raw, scores.rerank)
    return load_reranker(retriever.settings.reranker).score(query, [row.get("text", "")])[0]


def _within(position: int | None, limit: int) -> bool:
    return position is not None and position <= limit


def _list_rank(chunk_id: str, value: float, hits: list[dict[str, Any]], values: list[float], full: FullListRanks,
               name: str) -> ListRank:
    """The chunk's rank for the ``name`` score and its place in that list. In process, both from every chunk's exact
    scores (``hits`` are only the list's head); else the exact rank of ``value`` among the rescored ``hits`` and its
    place there, and when the list is cut at Milvus' window and lacks the chunk, a bound."""
    if full.places is not None:
        rank = full.list_rank(name, chunk_id, value)
        assert rank is not None, "lists built from every chunk's scores are whole"
        return ListRank(rank=rank, position=full.place(name, chunk_id), score=value)
    position = next((i for i, h in enumerate(hits, start=1) if h["id"] == chunk_id), None)
    above = sum(1 for h, v in zip(hits, values, strict=True) if v > value and h["id"] != chunk_id)
    if position is None and len(hits) >= MILVUS_MAX_LIMIT:
        return ListRank(rank=MILVUS_MAX_LIMIT, exact=False, score=value)
    return ListRank(rank=above + 1, position=position, score=value)
