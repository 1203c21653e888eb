"""Ranking metrics with ranx: Recall@k, MRR@10 and nDCG@10 of a run against qrels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from langchain_core.documents import Document
from ranx import Qrels, Run, evaluate

from rag.retrieval.chunk_scores import Scores


@dataclass
class ModeResult:
    """The metrics of one retrieval mode, its speed, or why it could not run."""

    mode: str
    metrics: dict[str, float] = field(default_factory=dict)
    queries: int = 0
    seconds: float = 0.0
    unavailable: str = ""

    @property
    def queries_per_second(self) -> float:
        return self.queries / self.seconds if self.seconds else 0.0


def metric_names(ks: Iterable[int]) -> list[str]:
    return [*(f"recall@{k}" for k in ks), "mrr@10", "ndcg@10"]


def documents_run(documents: Sequence[Document], key: str = "doc_id", strip_prefix: str = "") -> dict[str, float]:
    """Chunk hits aggregated by ``metadata[key]``: a document's score is its best chunk's final score."""
    scores: dict[str, float] = {}
    for doc in documents:
        name = str(doc.metadata[key]).removeprefix(strip_prefix)
        score = Scores.from_metadata(doc.metadata).final
        if name not in scores or score > scores[name]:
            scores[name] = score
    return scores


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]], ks: Iterable[int]
) -> dict[str, float]:
    """Mean metrics over the queries of ``qrels``; a query with no hits counts as 0."""
    judged = {q: dict(docs) for q, docs in qrels.items() if any(g > 0 for g in docs.values())}
    filled = {q: dict(run.get(q) or {}) for q in judged}
    empty = [q for q, docs in filled.items() if not docs]
    for q in empty:  # ranx needs a document per query; this one is judged irrelevant by construction
        filled[q] = {"__no_result__": 0.0}
    names = metric_names(ks)
    values = evaluate(Qrels(judged), Run(filled), names, make_comparable=True)
    return {name: float(values[name]) for name in names} if isinstance(values, dict) else {names[0]: float(values)}
