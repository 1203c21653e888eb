"""Evaluation results as a Markdown table: one row per mode, one column per metric, plus queries/s."""

from __future__ import annotations

from collections.abc import Sequence

from rag.evaluation.metrics import ModeResult


def metric_label(name: str) -> str:
    """A metric as people write it: recall@5 -> Recall@5, mrr@10 -> MRR@10, ndcg@10 -> nDCG@10."""
    return name.replace("recall", "Recall").replace("mrr", "MRR").replace("ndcg", "nDCG")


def markdown_table(results: Sequence[ModeResult], names: Sequence[str]) -> str:
    header = ["mode", *(metric_label(n) for n in names), "queries/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for result in results:
        if result.unavailable:
            cells = [result.mode, *(["n/a"] * len(names)), result.unavailable]
        else:
            cells = [result.mode, *(f"{result.metrics[n]:.4f}" for n in names), f"{result.queries_per_second:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
