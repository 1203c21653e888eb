"""Retrieval evaluation: BEIR-layout data sets and users' relevance judgments, scored with ranx.

The names load on first use (PEP 562), so that ``rag --help`` does not import ranx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.evaluation.beir import BeirSet, load_beir, load_beir_folder
    from rag.evaluation.judgments import Judgment, append_judgment, judgments_path, load_judgments
    from rag.evaluation.metrics import ModeResult, QuestionResult, documents_run, evaluate_run, metric_names
    from rag.evaluation.report import markdown_table
    from rag.evaluation.runner import Evaluation, evaluate_judgments, evaluate_questions, run_modes
    from rag.evaluation.significance import Comparison, compare_modes

_HOMES = {
    "beir": ("BeirSet", "load_beir", "load_beir_folder"),
    "judgments": ("Judgment", "append_judgment", "judgments_path", "load_judgments"),
    "metrics": ("ModeResult", "QuestionResult", "documents_run", "evaluate_run", "metric_names"),
    "report": ("markdown_table",),
    "runner": ("Evaluation", "evaluate_judgments", "evaluate_questions", "run_modes"),
    "significance": ("Comparison", "compare_modes"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}
__all__ = [
    "BeirSet", "Comparison", "Evaluation", "Judgment", "ModeResult", "QuestionResult", "append_judgment",
    "compare_modes", "documents_run", "evaluate_judgments", "evaluate_questions", "evaluate_run", "judgments_path",
    "load_beir", "load_beir_folder", "load_judgments", "markdown_table", "metric_names", "run_modes",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"rag.evaluation.{_MODULE_OF[name]}"), name)
