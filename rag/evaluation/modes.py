"""The evaluated retrieval modes (names, what each needs); light to import, for the CLI's option parsing."""

from __future__ import annotations

from typing import Any

from rag.config import MODES as RETRIEVAL_MODES
from rag.config import Fusion, Mode, Rerank

# The evaluated modes: each retrieval mode, hybrid with RRF fusion and hybrid with ColBERT reranking;
# name -> (retrieval mode, ColBERT reranking).
MODES: dict[str, tuple[Mode, bool]] = {
    **{mode: (mode, False) for mode in RETRIEVAL_MODES}, "hybrid+rrf": ("hybrid", False),
    "hybrid+colbert": ("hybrid", True),
}
# Cross-encoder modes (the reranker of retrieval.reranker reorders the best retrieval.rerank_candidates); evaluated
# when asked for (--modes ...,hybrid+rerank): they load a second model. name -> retrieval mode.
RERANK_MODES: dict[str, Mode] = {"hybrid+rerank": "hybrid", "dense+rerank": "dense"}
ALL_MODES: tuple[str, ...] = (*MODES, *RERANK_MODES)
CHUNKS_PER_DOCUMENT = 2  # chunks fetched per document wanted, so that aggregating them still fills the top k
# The fusion a mode name fixes; the other modes use the configured fusion (weighted unless changed).
FUSION_OF: dict[str, Fusion] = {"hybrid+rrf": "rrf"}


def search_options(mode: str) -> dict[str, Any]:
    """The ``HybridRetriever.search`` options of evaluated ``mode``: mode, rerank and fusion (None = configured)."""
    rerank: Rerank
    if mode in RERANK_MODES:
        retrieval_mode, rerank = RERANK_MODES[mode], "cross-encoder"
    else:
        retrieval_mode, colbert = MODES[mode]
        rerank = "colbert" if colbert else "none"
    return {"mode": retrieval_mode, "rerank": rerank, "fusion": FUSION_OF.get(mode)}


def unavailable_reason(encoder: Any, mode: str) -> str:
    """Why ``encoder`` cannot serve ``mode`` ("" when it can)."""
    options = search_options(mode)
    retrieval_mode, colbert = options["mode"], options["rerank"] == "colbert"
    backend = f"embedding.backend {getattr(encoder, 'backend', type(encoder).__name__)}"
    if retrieval_mode != "dense" and not getattr(encoder, "supports_sparse", True):
        return f"needs sparse vectors; {backend} is dense only"
    if colbert and not getattr(encoder, "supports_colbert", True):
        return f"needs ColBERT vectors; {backend} has none"
    return ""


def available_modes(encoder: Any) -> list[str]:
    """The evaluated modes ``encoder`` can serve, in table order."""
    return [mode for mode in MODES if not unavailable_reason(encoder, mode)]
