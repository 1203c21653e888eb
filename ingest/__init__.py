"""rag-ingest: read files, chunk them by the model's tokens, encode them and write them to a knowledge base.

The public API, the only names ``ui`` and ``cli`` import from this package. The pipeline and the readers
load on first use (they bring the encoder and the document libraries), so ``import ingest`` stays quick.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ingest.report import FileResult, IngestReport, ProgressListener, SilentProgress
from ingest.summary import IngestSummary, summarize

if TYPE_CHECKING:
    from ingest.pipeline import IngestPipeline
    from ingest.progress import RichProgress, print_summary
    from ingest.readers import SUPPORTED_SUFFIXES

_LAZY = {
    "IngestPipeline": "ingest.pipeline",
    "RichProgress": "ingest.progress",
    "print_summary": "ingest.progress",
    "SUPPORTED_SUFFIXES": "ingest.readers",
}

__all__ = [
    "SUPPORTED_SUFFIXES", "FileResult", "IngestPipeline", "IngestReport", "IngestSummary", "ProgressListener",
    "RichProgress", "SilentProgress", "print_summary", "summarize",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")
