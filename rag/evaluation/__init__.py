"""Retrieval evaluation: BEIR-layout data sets and users' relevance judgments, scored with ranx."""

from rag.evaluation.beir import BeirSet, load_beir
from rag.evaluation.judgments import Judgment, append_judgment, judgments_path, load_judgments
from rag.evaluation.metrics import ModeResult, documents_run, evaluate_run, metric_names
from rag.evaluation.report import markdown_table

__all__ = [
    "BeirSet", "Judgment", "ModeResult", "append_judgment", "documents_run", "evaluate_run", "judgments_path",
    "load_beir", "load_judgments", "markdown_table", "metric_names",
]
