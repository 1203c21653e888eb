"""`rag explain QUERY --chunk ID`: why a chunk was or was not retrieved for a query, and what would bring it in."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.common import (
    ConfigOption,
    FolderOption,
    FusionOption,
    JsonOption,
    KbsOption,
    MetaOption,
    MinScoreOption,
    ModeOption,
    PagesOption,
    SourceOption,
    SourcePrefixOption,
    TopKOption,
    TypeOption,
    console,
    open_retriever,
    search_filters,
)
from clikit import flag_overrides, safe
from rag.config import load_settings

if TYPE_CHECKING:  # imported when the command runs: a usage error is reported without loading pymilvus
    from rag.workbench.explain import Explanation, Fix
    from rag.workbench.kb_ranks import ListRank

MAX_TERMS = 8
RERANK_OUTSIDE = "not in final: scored for this explanation (the search did not rerank it into the results)"


def explain(
    query: Annotated[str, typer.Argument(help="The question the chunk should answer.", show_default=False)],
    chunk: Annotated[str | None, typer.Option("--chunk", help="Id of the chunk that should have been found.",
                                              show_default=False)] = None,
    doc: Annotated[str | None, typer.Option("--doc", help="Explain every chunk of this source file instead.",
                                            show_default=False)] = None,
    kb: KbsOption = None,
    top_k: TopKOption = None,
    mode: ModeOption = None,
    fusion: FusionOption = None,
    min_score: MinScoreOption = None,
    source: SourceOption = None,
    source_prefix: SourcePrefixOption = None,
    folder: FolderOption = None,
    file_type: TypeOption = None,
    pages: PagesOption = None,
    meta: MetaOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Explain a miss: the chunk's exact scores and ranks, the cut that lost it, and a checked fix.

    The retrieval options and filters are those of the search that missed it (as `rag search` takes them).
    """
    if (chunk is None) == (doc is None):
        raise typer.BadParameter("give either --chunk ID or --doc SOURCE.")
    if kb and len(set(kb)) > 1:
        raise typer.BadParameter("a chunk is explained in its own knowledge base: give --kb once, the one holding it.")
    from rag.workbench.explain import explain as explain_chunk
    from rag.workbench.explain import explain_document

    settings = load_settings(config, **flag_overrides(retrieval={"top_k": top_k, "mode": mode, "fusion": fusion,
                                                                 "min_score": min_score}))
    filters = search_filters(source, source_prefix, folder, file_type, pages, meta)
    with open_retriever(settings, kb, filters) as retriever:
        if doc is not None:
            results = explain_document(retriever, query, doc)
        else:
            results = [explain_chunk(retriever, query, chunk or "")]
    if as_json:
        data = results[0].to_dict() if doc is None else {"query": query, "source": doc,
                                                         "chunks": [r.to_dict() for r in results]}
        print(json.dumps(data, ensure_ascii=False, indent=2))
    elif doc is not None:
        console.print(document_table(results))
    else:
        show(results[0])


def document_table(results: list[Explanation]) -> Table:
    """One row per chunk of a document: its ranks, final score and the cut that lost it."""
    table = Table(header_style="bold", title=safe(f"{results[0].source}: {results[0].query!r}"))
    for name in ("#", "chunk", "dense", "sparse", "final", "final rank", "verdict"):
        table.add_column(name)
    for r in results:
        table.add_row(str(r.chunk_index), safe(r.chunk_id[:12]), r.dense.describe(), r.sparse.describe(),
                      f"{r.scores.final:.4f}", _describe(r.final_rank), safe(r.reason))
    return table


def show(result: Explanation) -> None:
    """One chunk's explanation: the verdict, the scores with their ranks, the terms, neighbours and fixes."""
    console.print(f"chunk {safe(result.chunk_id)} ({safe(result.source)} #{result.chunk_index}) for "
                  f"{safe(repr(result.query))}: [bold]{safe(result.reason)}[/bold]", highlight=False)
    s = result.scores
    table = Table(header_style="bold")
    for name in ("score", "value", "rank in the knowledge base", "in Milvus' list at"):
        table.add_column(name)
    for name, rank in (("dense", result.dense), ("sparse", result.sparse)):
        table.add_row(name, f"{getattr(s, name):.4f}", rank.describe(), "-" if rank.position is None else
                      str(rank.position))
    table.add_row("hybrid", "-" if s.hybrid is None else f"{s.hybrid:.4f}", _describe(result.hybrid_rank), "")
    table.add_row("rrf", f"{s.rrf:.4f}", _describe(result.rrf_rank, s.rrf), "")
    table.add_row("final", f"{s.final:.4f}", _describe(result.final_rank, s.final), "")
    if result.rerank is not None:  # the cross-encoder: in final when the search reranked the chunk
        table.add_row("rerank", f"{result.rerank.normalised:.4f} (logit {result.rerank.raw:.4f})",
                      f"rerank_rank {s.ranks.rerank}" if s.rerank is not None else RERANK_OUTSIDE, "")
    console.print(table)
    console.print(f"candidate lists: {result.candidate_limit} chunks each; hybrid, rrf and final ranks are among "
                  "all chunks, as if the candidate lists held every chunk", highlight=False)
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
            console.print(f"try {safe(fix.describe())}: checked by searching again, {_outcome(fix)}",
                          highlight=False)
    if result.filter_fix is not None:
        console.print(f"without the filter {safe(' and '.join(result.dropped_by))}: checked by searching again, "
                      f"{_outcome(result.filter_fix)}", highlight=False)


def _outcome(fix: Fix) -> str:
    return f"retrieved at rank {fix.retrieved_rank}" if fix.works else "still not in top_k"


def _describe(rank: ListRank | None, value: float | None = None) -> str:
    """The rank; with the value it ranks when that differs from the search's (rrf over the full lists)."""
    if rank is None:
        return "-"
    if value is not None and rank.score is not None and abs(rank.score - value) > 1e-12:
        return f"{rank.describe()} (at {rank.score:.4f} over the full lists)"
    return rank.describe()


def register(app: typer.Typer) -> None:
    app.command()(explain)
