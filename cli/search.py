"""`rag search` and `rag ask`: retrieval with every score, and answers from the local Ollama model."""

from __future__ import annotations

import json
from typing import Annotated

import typer

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
    RerankOption,
    SourceOption,
    SourcePrefixOption,
    TopKOption,
    TypeOption,
    console,
    err,
    open_retriever,
    search_filters,
)
from cli.render import documents_table, results_table
from clikit import flag_overrides, safe, visible
from rag.config import load_settings

__all__ = ["FusionOption", "ModeOption", "RerankOption", "ask", "register", "search"]
RERANK_LABELS = {"colbert": "ColBERT", "cross-encoder": "cross-encoder"}


def search(
    query: Annotated[str, typer.Argument(help="What to look for.", show_default=False)],
    kb: KbsOption = None,
    top_k: TopKOption = None,
    mode: ModeOption = None,
    fusion: FusionOption = None,
    colbert: Annotated[bool | None, typer.Option("--colbert/--no-colbert", help="ColBERT rerank.")] = None,
    rerank: RerankOption = None,
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
    """Search a knowledge base (or several: --kb A --kb B) and show every chunk with its dense, sparse, colbert,
    rerank, hybrid and final scores."""
    settings = load_settings(config)
    filters = search_filters(source, source_prefix, folder, file_type, pages, meta)
    with open_retriever(settings, kb, filters) as retriever:
        result = retriever.search(query, top_k=top_k, mode=mode, fusion=fusion, colbert=colbert,
                                  min_score=min_score, rerank=rerank)  # type: ignore[arg-type]
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str))
        return
    console.print(results_table(result))
    t = result.timings
    reranked = min(settings.retrieval.rerank_candidates, result.candidates)
    console.print(f"{len(result.documents)} of {result.candidates} candidates; {t.total_ms:.0f} ms (encode "
                  f"{t.encode_ms:.0f}, Milvus {t.milvus_ms:.0f}, rescoring {t.rescoring_ms:.0f}"
                  + (f", {RERANK_LABELS[result.rerank]} {t.rerank_ms:.0f} for {reranked} candidates"
                     if result.rerank in RERANK_LABELS else "")
                  + ")", highlight=False)


def ask(
    question: Annotated[str, typer.Argument(help="Your question, in any language.", show_default=False)],
    kb: KbsOption = None,
    top_k: TopKOption = None,
    mode: ModeOption = None,
    fusion: FusionOption = None,
    rerank: RerankOption = None,
    min_score: MinScoreOption = None,
    source: SourceOption = None,
    source_prefix: SourcePrefixOption = None,
    folder: FolderOption = None,
    file_type: TypeOption = None,
    pages: PagesOption = None,
    meta: MetaOption = None,
    model: Annotated[str | None, typer.Option(help="Ollama model (llm.model).")] = None,
    config: ConfigOption = None,
) -> None:
    """Answer a question from a knowledge base (or several: --kb A --kb B) with the local Ollama model, citing
    chunks as [n]."""
    from rag.chain import AnswerChain

    retrieval = {"top_k": top_k, "mode": mode, "fusion": fusion, "rerank": rerank, "min_score": min_score}
    settings = load_settings(config, **flag_overrides(retrieval=retrieval, llm={"model": model}))
    filters = search_filters(source, source_prefix, folder, file_type, pages, meta)
    with open_retriever(settings, kb, filters) as retriever:
        stream = AnswerChain(retriever, settings.llm).stream(question)
        for piece in stream:
            console.out(visible(piece, multiline=True), end="", highlight=False)
        console.out("")
    if stream.error:
        label = "answer cut off" if stream.partial else "no answer"
        err.print(f"[red]{label}:[/red] {safe(stream.error, multiline=True)}", highlight=False)
    if stream.documents:
        console.print(documents_table(stream.documents, title="Sources", cite=True))
    if stream.error:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(search)
    app.command()(ask)


