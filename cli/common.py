"""What the `rag` commands share: settings, the loaded encoder and store, the retriever of one or several knowledge
bases, and the retrieval options and search filters `rag search`, `rag ask` and `rag explain` spell the same way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from clikit import ConfigOption, KbOption, console, err, kb_name, safe
from rag.config import FUSIONS, MODES, RERANKS, Settings
from rag.errors import InvalidInputError

if TYPE_CHECKING:  # imported when a command runs: a usage error is reported without loading pymilvus
    from rag.retrieval.filters import SearchFilters

__all__ = ["ConfigOption", "FolderOption", "FusionOption", "JsonOption", "KbOption", "KbsOption", "MetaOption",
           "MinScoreOption", "ModeOption", "PagesOption", "RerankOption", "SourceOption", "SourcePrefixOption",
           "TopKOption", "TypeOption", "console", "err", "load_encoder_with_status", "open_retriever", "search_filters"]

TopKOption = Annotated[int | None, typer.Option("--top-k", "-k", min=1, help="Chunks to return (retrieval.top_k).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ModeOption = Annotated[str | None, typer.Option("--mode", help=f"{' | '.join(MODES)} (retrieval.mode).")]
FusionOption = Annotated[str | None, typer.Option(help=f"{' | '.join(FUSIONS)} (retrieval.fusion).")]
RerankOption = Annotated[str | None, typer.Option(
    help=f"{' | '.join(RERANKS)} (retrieval.rerank): what reorders the best retrieval.rerank_candidates.")]
MinScoreOption = Annotated[float | None, typer.Option(help="Keep chunks with final >= this (retrieval.min_score).")]


def kb_names(values: list[str] | None) -> list[str] | None:
    """Callback of the repeatable --kb: each name by the kb.name rule, as a usage error."""
    for value in values or []:
        kb_name(value)
    return values


def _pages(value: str | None) -> str | None:
    if value is not None:
        from rag.retrieval.filters import parse_pages

        try:
            parse_pages(value)
        except InvalidInputError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


def _meta(values: list[str] | None) -> list[str] | None:
    for value in values or []:
        key, sep, _ = value.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE (e.g. --meta year=2020).")
    return values


KbsOption = Annotated[list[str] | None, typer.Option(
    "--kb", callback=kb_names, show_default=False, metavar="NAME",
    help="Knowledge base name (default: kb.name setting); repeat it to search several built with the same model "
         "in one ranking.")]
SourceOption = Annotated[str | None, typer.Option(help="Only chunks of this source file.", show_default=False,
                                                  metavar="PATH")]
SourcePrefixOption = Annotated[str | None, typer.Option(help="Only sources starting with this.", show_default=False,
                                                        metavar="TEXT")]
FolderOption = Annotated[str | None, typer.Option(
    help="Only sources in this folder (relative to the folder ingested, e.g. docs/policies).", show_default=False,
    metavar="DIR")]
TypeOption = Annotated[list[str] | None, typer.Option(
    "--type", help="Only files of this type (pdf, md, txt, html, docx, csv, json, ...); repeat for any of several.",
    show_default=False, metavar="TYPE")]
PagesOption = Annotated[str | None, typer.Option(
    help="Only chunks on these pages (PDFs): 3-7, 5, 3- or -7.", callback=_pages, show_default=False,
    metavar="RANGE")]
MetaOption = Annotated[list[str] | None, typer.Option(
    "--meta", callback=_meta, show_default=False, metavar="KEY=VALUE",
    help="Only records (CSV, JSON, JSONL rows) whose field KEY is VALUE: --meta KEY=VALUE; repeat for more fields "
         "(the same key twice: any of the values).")]


def search_filters(source: str | None = None, source_prefix: str | None = None, folder: str | None = None,
                   types: list[str] | None = None, pages: str | None = None,
                   meta: list[str] | None = None) -> SearchFilters | None:
    """The SearchFilters of the filter options (None when none is given). ``--meta`` values match a record field
    stored as that text or as the JSON number or true/false spelled so."""
    from rag.retrieval.filters import SearchFilters, parse_pages, text_alternatives

    if source_prefix and folder:
        raise typer.BadParameter("give --folder or --source-prefix, not both.")
    fields: dict[str, tuple] = {}
    for item in meta or []:
        key, _, value = item.partition("=")
        fields[key.strip()] = fields.get(key.strip(), ()) + text_alternatives(value)
    first, last = parse_pages(pages) if pages else (None, None)
    try:
        filters = SearchFilters(source=source or None,
                                source_prefix=SearchFilters.folder(folder) if folder else source_prefix or None,
                                file_types=tuple(types or ()), page_from=first, page_to=last, fields=fields)
    except InvalidInputError as exc:
        raise typer.BadParameter(str(exc)) from None
    return filters if filters.expression() else None


def load_encoder_with_status(settings: Settings):
    from rag.encoder import load_encoder

    with err.status(f"Loading embedding model {safe(settings.embedding.model)} ..."):
        return load_encoder(settings.embedding, data_dir=settings.app.data_dir)


@contextmanager
def open_retriever(settings: Settings, kb: str | list[str] | None, filters: SearchFilters | None = None) -> Iterator:
    """The retriever of knowledge base ``kb`` (default kb.name), or of several merged (a list of more than one
    name: a MultiKBRetriever), with ``filters``; the store is closed afterwards."""
    from rag.retrieval import HybridRetriever, MultiKBRetriever
    from rag.store import MilvusStore

    names = list(dict.fromkeys([kb] if isinstance(kb, str) else kb or [])) or [settings.kb.name]
    encoder = load_encoder_with_status(settings)
    with MilvusStore(settings.milvus) as store:
        if len(names) == 1:
            yield HybridRetriever.from_store(encoder, store, names[0], settings.retrieval, filters=filters)
        else:
            yield MultiKBRetriever.from_store(encoder, store, names, settings.retrieval, filters=filters)
