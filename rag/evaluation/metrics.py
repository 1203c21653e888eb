"""Ranking metrics with ranx: Recall@k, MRR@10 and nDCG@10 of a run against qrels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from langchain_core.documents import Document
from ranx import Qrels, Run, evaluate

from rag.retrieval.chunk_scores import Scores


@dataclass
class QuestionResult:
    """One judged question in one mode's run: its relevant ids, and where the first of them ranked."""

    qid: str
    query: str
    relevant: list[str]
    rank: int | None = None  # 1-based rank of the first relevant id in the run; None: missed
    found: str | None = None  # the relevant id at that rank

    @property
    def missed(self) -> bool:
        return self.rank is None


@dataclass
class ModeResult:
    """The metrics of one retrieval mode, its speed, or why it could not run; its run and per-question ranks."""

    mode: str
    metrics: dict[str, float] = field(default_factory=dict)
    queries: int = 0
    seconds: float = 0.0
    unavailable: str = ""
    run: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)
    questions: list[QuestionResult] = field(default_factory=list, repr=False)

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


def ranx_inputs(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]], name: str | None = None
) -> tuple[Qrels, Run]:
    """The judged questions (at least one relevant id) and the run over exactly those, as ranx objects."""
    judged = {q: dict(docs) for q, docs in qrels.items() if any(g > 0 for g in docs.values())}
    filled = {q: dict(run.get(q) or {}) for q in judged}
    for docs in filled.values():
        if not docs:  # ranx needs a document per query; this one is judged irrelevant by construction
            docs["__no_result__"] = 0.0
    return Qrels(judged), Run(filled, name=name)


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]], ks: Iterable[int]
) -> dict[str, float]:
    """Mean metrics over the queries of ``qrels``; a query with no hits counts as 0."""
    judged, filled = ranx_inputs(qrels, run)
    names = metric_names(ks)
    values = evaluate(judged, filled, names, make_comparable=True)
    return {name: float(values[name]) for name in names} if isinstance(values, dict) else {names[0]: float(values)}
