"""`rag search` and `rag ask`: retrieval with every score, and answers from the local Ollama model."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.common import ConfigOption, JsonOption, KbOption, TopKOption, console, err, open_retriever
from cli.render import documents_table, results_table
from clikit import flag_overrides, safe, visible
from rag.config import FUSIONS, MODES, RERANKS, load_settings

ModeOption = Annotated[str | None, typer.Option("--mode", help=f"{' | '.join(MODES)} (retrieval.mode).")]
FusionOption = Annotated[str | None, typer.Option(help=f"{' | '.join(FUSIONS)} (retrieval.fusion).")]
RerankOption = Annotated[str | None, typer.Option(
    help=f"{' | '.join(RERANKS)} (retrieval.rerank): what reorders the best retrieval.rerank_candidates.")]
RERANK_LABELS = {"colbert": "ColBERT", "cross-encoder": "cross-encoder"}


def search(
    query: Annotated[str, typer.Argument(help="What to look for.", show_default=False)],
    kb: KbOption = None,
    top_k: TopKOption = None,
    mode: ModeOption = None,
    fusion: FusionOption = None,
    colbert: Annotated[bool | None, typer.Option("--colbert/--no-colbert", help="ColBERT rerank.")] = None,
    rerank: RerankOption = None,
    min_score: Annotated[float | None, typer.Option(help="Keep chunks with final >= this.")] = None,
    source: Annotated[str | None, typer.Option(help="Only chunks of this source file.")] = None,
    source_prefix: Annotated[str | None, typer.Option(help="Only sources starting with this.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Search a knowledge base and show every chunk with its dense, sparse, colbert, rerank, hybrid and final scores."""
    settings = load_settings(config)
    filters = {k: v for k, v in {"source": source, "source_prefix": source_prefix}.items() if v}
    with open_retriever(settings, kb) as retriever:
        result = retriever.search(query, top_k=top_k, mode=mode, fusion=fusion, colbert=colbert,
                                  min_score=min_score, filters=filters or None, rerank=rerank)  # type: ignore[arg-type]
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
    kb: KbOption = None,
    top_k: TopKOption = None,
    mode: ModeOption = None,
    model: Annotated[str | None, typer.Option(help="Ollama model (llm.model).")] = None,
    config: ConfigOption = None,
) -> None:
    """Answer a question from a knowledge base with the local Ollama model, citing chunks as [n]."""
    from rag.chain import AnswerChain

    settings = load_settings(config, **flag_overrides(retrieval={"top_k": top_k, "mode": mode}, llm={"model": model}))
    with open_retriever(settings, kb) as retriever:
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


