"""`rag explain QUERY --chunk ID`: why a chunk was or was not retrieved for a query, and what would bring it in."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from cli.common import ConfigOption, JsonOption, KbOption, TopKOption, console, open_retriever
from cli.search import ModeOption
from clikit import flag_overrides, safe
from rag.config import load_settings

MAX_TERMS = 8


def explain(
    query: Annotated[str, typer.Argument(help="The question the chunk should answer.", show_default=False)],
    chunk: Annotated[str, typer.Option("--chunk", help="Id of the chunk that should have been found.",
                                       show_default=False)],
    kb: KbOption = None,
    top_k: TopKOption = None,
    mode: ModeOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Explain a miss: the chunk's exact scores and ranks, the cut that lost it, and a checked fix."""
    from rag.workbench.explain import explain as explain_chunk

    settings = load_settings(config, **flag_overrides(retrieval={"top_k": top_k, "mode": mode}))
    with open_retriever(settings, kb) as retriever:
        result = explain_chunk(retriever, query, chunk)
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    console.print(f"chunk {safe(result.chunk_id)} ({safe(result.source)} #{result.chunk_index}) for "
                  f"{safe(repr(result.query))}: [bold]{safe(result.reason)}[/bold]", highlight=False)
    s = result.scores
    table = Table(header_style="bold")
    for name in ("score", "value", "rank in the knowledge base", "in Milvus' list at"):
        table.add_column(name)
    for name, rank in (("dense", result.dense), ("sparse", result.sparse)):
        table.add_row(name, f"{getattr(s, name):.4f}", rank.describe(), "-" if rank.position is None else
                      str(rank.position))
    table.add_row("hybrid", "-" if s.hybrid is None else f"{s.hybrid:.4f}", "", "")
    table.add_row("rrf", f"{s.rrf:.4f}", "", "")
    table.add_row("final", f"{s.final:.4f}", "", "")
    console.print(table)
    console.print(f"candidate lists: {result.candidate_limit} chunks each", highlight=False)
    for label, items, key in (("matched terms", result.matched_terms, "contribution"),
                              ("missing query terms", result.missing_terms, "query_weight")):
        shown = ", ".join(f"{t['term']} ({t[key]:.3f})" for t in items[:MAX_TERMS]) or "none"
        console.print(f"{label}: {safe(shown)}", highlight=False)
    for n in result.neighbours:
        where = f", retrieved at rank {n.retrieved_rank}" if n.retrieved_rank is not None else ""
        console.print(f"chunk {n.relation} (#{n.chunk_index}, {safe(n.chunk_id)}): final {n.scores.final:.4f}, "
                      f"{'higher' if n.higher else 'not higher'}{where}", highlight=False)
    for fix in result.fixes:
        if fix.value is None:
            console.print(f"no {fix.setting} within its limits brings it into the candidate lists", highlight=False)
        else:
            outcome = f"retrieved at rank {fix.retrieved_rank}" if fix.works else "still not in top_k"
            console.print(f"try {fix.setting} = {fix.value}: checked by searching again, {outcome}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(explain)
