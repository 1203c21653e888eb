"""Every evaluated mode over the same questions: metrics per mode, and per question the rank of its answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document

from rag.evaluation.metrics import ModeResult, QuestionResult, documents_run, evaluate_run, metric_names
from rag.evaluation.modes import CHUNKS_PER_DOCUMENT, MODES, search_options, unavailable_reason
from rag.evaluation.significance import Comparison, compare_modes

Progress = Callable[[int, int, str], None]  # (questions done, questions in all modes, mode now running)
ToRun = Callable[[Sequence[Document]], dict[str, float]]  # a search's documents -> {judged id: score}


def question_results(
    queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]
) -> list[QuestionResult]:
    """For each judged question: its relevant ids and the rank of the first relevant one in the run (None: missed).

    The run of a question lists ids in the search's own rank order (as :func:`documents_run` builds it).
    """
    found = []
    for qid, judged in qrels.items():
        relevant = [doc for doc, grade in judged.items() if grade > 0]
        if not relevant:
            continue
        ranked = list(run.get(qid) or {})
        hit = next(((rank, doc) for rank, doc in enumerate(ranked, start=1) if doc in relevant), None)
        found.append(QuestionResult(qid, queries.get(qid, qid), relevant, *(hit or (None, None))))
    return found


def run_modes(
    retriever: Any,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    modes: Sequence[str],
    ks: Sequence[int],
    to_run: ToRun,
    chunk_k: int,
    progress: Progress | None = None,
) -> list[ModeResult]:
    """Every query in every mode; each mode encodes its queries itself, so queries/s is comparable.

    ``progress(done, total, mode)`` is called before each mode and after every query (a mode the encoder cannot
    serve counts as done at once).
    """
    total, done = len(modes) * len(queries), 0
    results = []
    for mode in modes:
        if progress:
            progress(done, total, mode)
        reason = unavailable_reason(retriever.encoder, mode)
        if reason:
            results.append(ModeResult(mode, unavailable=reason))
            done += len(queries)
            if progress:
                progress(done, total, mode)
            continue
        options = search_options(mode)
        retriever.query_cache.clear()
        run: dict[str, dict[str, float]] = {}
        started = time.perf_counter()
        for qid, text in queries.items():
            found = retriever.search(text, top_k=chunk_k, min_score=0.0, **options)
            run[qid] = to_run(found.documents)
            done += 1
            if progress:
                progress(done, total, mode)
        seconds = time.perf_counter() - started
        results.append(ModeResult(mode, evaluate_run(qrels, run, ks), len(queries), seconds, run=run,
                                  questions=question_results(queries, qrels, run)))
    return results


@dataclass
class Evaluation:
    """Every mode over one set of judged questions: per-mode results, the metrics, and their comparisons."""

    results: list[ModeResult]
    metrics: list[str]
    comparisons: list[Comparison]
    depth: int  # chunks retrieved per question: a relevant chunk below this rank is missed

    @property
    def questions(self) -> int:
        return max((len(r.questions) for r in self.results), default=0)


def evaluate_questions(
    retriever: Any,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    ks: Sequence[int],
    *,
    key: str = "id",
    strip_prefix: str = "",
    modes: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Judged questions in every mode (all of MODES unless given); the judged ids are ``metadata[key]`` of the
    chunks with ``strip_prefix`` removed: chunk ids (``id``) or document ids (``doc_id``, as `rag eval` matches a
    BEIR corpus), in which case each question fetches CHUNKS_PER_DOCUMENT chunks per document ranked."""
    names = metric_names(ks)
    depth = max(*ks, 10)  # MRR@10 and nDCG@10 need ten
    judged = {qid: queries[qid] for qid, ids in qrels.items() if any(grade > 0 for grade in ids.values())}
    chunk_k = depth * (CHUNKS_PER_DOCUMENT if key == "doc_id" else 1)
    results = run_modes(retriever, judged, qrels, list(modes or MODES), ks,
                        lambda docs: documents_run(docs, key, strip_prefix), chunk_k, progress)
    return Evaluation(results, names, compare_modes(qrels, results, names), depth)


def evaluate_judgments(
    retriever: Any,
    qrels: Mapping[str, Mapping[str, int]],
    ks: Sequence[int],
    modes: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Users' marks (qrels[query text][chunk id]) evaluated in every mode (all of MODES unless given)."""
    return evaluate_questions(retriever, {query: query for query in qrels}, qrels, ks, modes=modes,
                              progress=progress)
