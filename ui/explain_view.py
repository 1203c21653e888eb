"""How the Retrieval check page shows an explanation (rag.workbench.explain): verdict, scores with their ranks,
terms, neighbours, and the checked fixes, each with an Apply button when a control of the page sets it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from html import escape
from typing import Any

import pandas as pd
import streamlit as st

from rag.workbench.explain import Explanation, Fix, ListRank
from ui.i18n import t
from ui.markup import highlight, visible_term
from ui.safe_markdown import escape_markdown

SCORE_NAMES = ("dense", "sparse", "colbert", "hybrid", "rrf", "final")
# Fix settings a control of the app sets: the Retrieval check page's own controls, and the sidebar's min score.
CONTROLS = {"top_k": "rc_top_k", "mode": "rc_mode", "fusion": "rc_fusion", "weights.dense": "rc_w_dense",
            "weights.sparse": "rc_w_sparse", "weights.colbert": "rc_w_colbert", "min_score": "opt_min_score"}
CONTROL_LIMITS = {"rc_top_k": (1, 200), "rc_w_dense": (0.0, 10.0), "rc_w_sparse": (0.0, 10.0),
                  "rc_w_colbert": (0.0, 10.0), "opt_min_score": (-1.0, 100.0)}
MAX_TERMS = 12


def ranks_of(result: Explanation) -> dict[str, ListRank]:
    """The explanation's ranks by score name (``dense``, ``sparse`` and any other rank it carries)."""
    found = {}
    for item in fields(result):
        value = getattr(result, item.name)
        if isinstance(value, ListRank):
            found[item.name.removesuffix("_rank")] = value
    return found


def score_table(result: Explanation) -> pd.DataFrame:
    """One row per score the chunk has: its value, its rank among all chunks and its place in Milvus' list."""
    ranks = ranks_of(result)
    rows = []
    for name in SCORE_NAMES:
        value = result.scores.value(name)
        if value is None:
            continue
        rank = ranks.get(name)
        rows.append({t("rcx_col_score"): name, t("rcx_col_value"): round(float(value), 6),
                     t("rcx_col_rank"): rank.describe() if rank else "",
                     t("rcx_col_position"): "" if rank is None or rank.position is None else str(rank.position)})
    if result.rerank is not None:  # the cross-encoder: in final only when the search reranked the chunk
        in_final = result.scores.rerank is not None
        where = f"rerank_rank {result.scores.ranks.rerank}" if in_final else t("rcx_rerank_outside")
        for name, value in (("rerank", result.rerank.normalised), ("rerank_raw", result.rerank.raw)):
            rows.append({t("rcx_col_score"): name, t("rcx_col_value"): round(float(value), 6), t("rcx_col_rank"): where,
                         t("rcx_col_position"): ""})
    return pd.DataFrame(rows)


def changes_of(fix: Fix) -> dict[str, Any]:
    """Every setting ``fix`` changes, e.g. ``{"fusion": "weighted", "weights.sparse": 0.8}``."""
    return {**fix.also, fix.setting: fix.value}


def controls_for(fix: Fix) -> dict[str, Any] | None:
    """The session-state keys of the controls that make ``fix`` and their values; None when a control lacks."""
    if fix.value is None:
        return None
    found = {}
    for setting, value in changes_of(fix).items():
        key = CONTROLS.get(setting)
        low, high = CONTROL_LIMITS.get(key or "", (None, None))
        if key is None or (low is not None and not low <= value <= high):
            return None
        found[key] = value
    return found


def config_hint(fix: Fix) -> str:
    """The YAML for ``--config FILE`` and the environment variables that make ``fix``."""
    yaml, env = ["retrieval:"], []
    for setting, value in changes_of(fix).items():
        path = setting.split(".")
        yaml.extend(f"{'  ' * (depth + 1)}{part}:" for depth, part in enumerate(path[:-1]))
        yaml.append(f"{'  ' * len(path)}{path[-1]}: {value}")
        env.append("RAG_RETRIEVAL__" + "__".join(part.upper() for part in path) + f"={value}")
    return "\n".join(yaml) + "\n\n" + "\n".join(env)


def _terms(items: Sequence[dict[str, Any]], weight: str) -> str:
    shown = [f"{item['term']} ({float(item[weight]):.3f})" for item in items if visible_term(str(item["term"]))]
    return escape_markdown(", ".join(shown[:MAX_TERMS])) if shown else t("rcx_none")


def show(result: Explanation, apply: Callable[[dict[str, Any]], None], key: str = "rcx_fix") -> None:
    """One chunk's explanation; ``apply({control_key: value})`` is the Apply buttons' callback."""
    verdict = t("rcx_verdict", chunk=escape_markdown(result.chunk_id[:12]), source=escape_markdown(result.source),
                number=t("chunk", n=result.chunk_index + 1), reason=escape_markdown(result.reason))
    (st.success if result.lost_at == "retrieved" else st.warning)(verdict)
    st.table(score_table(result).set_index(t("rcx_col_score")))  # our numbers and words only
    st.caption(t("rcx_lost_at", cut=result.lost_at) + " " + t("rcx_candidates", n=result.candidate_limit))
    st.markdown(f"**{t('rcx_matched')}**: {_terms(result.matched_terms, 'contribution')}")
    st.markdown(f"**{t('rcx_missing')}**: {_terms(result.missing_terms, 'query_weight')}")
    for n in result.neighbours:
        where = t("rcx_neighbour_rank", rank=n.retrieved_rank) if n.retrieved_rank is not None else ""
        st.caption(t("rcx_neighbour", relation=t(f"rcx_{n.relation}"), number=t("chunk", n=n.chunk_index + 1),
                     chunk=escape_markdown(n.chunk_id[:12]), final=f"{n.scores.final:.4f}",
                     higher=t("rcx_higher") if n.higher else t("rcx_not_higher"), where=where))
    if result.spans_neighbour:
        st.info(t("rcx_spans"))
    if result.fixes:
        st.markdown(f"**{t('rcx_fixes')}**")
    for index, fix in enumerate(result.fixes):
        show_fix(fix, apply, f"{key}_{index}")
    terms = [str(m["term"]) for m in result.matched_terms]
    st.html(f'<div class="rs-text" data-chunk-id="{escape(result.chunk_id, quote=True)}" style="white-space:pre-wrap;'
            f'max-height:14em;overflow:auto;background:#fafafa;padding:6px;border-radius:4px">'
            f'{highlight(result.text, terms)}</div>')


def show_fix(fix: Fix, apply: Callable[[dict[str, Any]], None], key: str) -> None:
    """A fix and its checked outcome, with an Apply button or, without controls for it, how to set it."""
    if fix.value is None:
        st.markdown("- " + t("rcx_fix_none", setting=fix.setting))
        return
    outcome = t("rcx_fix_works", rank=fix.retrieved_rank) if fix.works else t("rcx_fix_fails")
    controls = controls_for(fix)
    text, button = st.columns([4, 1])
    text.markdown("- " + escape_markdown(t("rcx_fix", change=fix.describe(), outcome=outcome)))
    if controls is not None:
        button.button(t("rcx_apply"), key=key, on_click=apply, args=(controls,))
    else:
        text.caption(t("rcx_fix_config"))
        text.code(config_hint(fix), language=None)


def document_table(results: Sequence[Explanation]) -> pd.DataFrame:
    """Every chunk of a document explained: its ranks, final score and the cut that lost it."""
    return pd.DataFrame([{
        "chunk": r.chunk_index + 1, "id": r.chunk_id, "dense": r.dense.describe(), "sparse": r.sparse.describe(),
        "final": round(r.scores.final, 6), "lost_at": r.lost_at, "reason": r.reason,
    } for r in results])
