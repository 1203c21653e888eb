"""`rag chunks`: browse a knowledge base's chunks page by page, by source or by words in their text or source."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.common import ConfigOption, JsonOption, KbOption, console, err
from clikit import safe
from rag.config import load_settings

if TYPE_CHECKING:  # not imported at run time: a usage error of `rag` is reported without loading pymilvus
    from collections.abc import Callable

    from rag.config import EmbeddingSettings
    from rag.retrieval.provenance import Provenance
    from rag.workbench import ChunkView, DocumentEntry

ID_WIDTH = 64  # chunk ids are sha256 hex digests
TABLE_WIDTH = ID_WIDTH + 60  # narrower terminals get one block per chunk: a table would squeeze the text to nothing


def _where(origin: Provenance) -> str:
    return origin.page_label or origin.heading or ""


def chunks(
    kb: KbOption = None,
    source: Annotated[str | None, typer.Option(help="Only the chunks of this source file, in order.")] = None,
    contains: Annotated[str | None, typer.Option(
        help="Only chunks whose text or source contains every one of these words (% and _ match themselves)."
    )] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Chunks per page.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Chunks (or documents) to skip: the page's start.")] = 0,
    documents: Annotated[bool, typer.Option(
        "--documents", help="List the documents with their chunk counts instead of chunks."
    )] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List a knowledge base's chunks with id, source, chunk number, page or heading and full text, a page at a
    time (--limit, --offset); or its documents with their chunk counts (--documents)."""
    from rag.store import MilvusStore
    from rag.workbench import ChunkBrowser

    settings = load_settings(config)
    name = kb or settings.kb.name
    with MilvusStore(settings.milvus) as store:
        knowledge_base = store.open(name)
        if documents:
            _print_documents(name, ChunkBrowser(knowledge_base).documents(limit=limit, offset=offset), as_json)
            return
        browser = ChunkBrowser(knowledge_base, count_tokens=_token_counter(settings.embedding))
        page = browser.chunks(source=source, contains=contains, limit=limit, offset=offset)
    if as_json:
        print(json.dumps({"kb": name, **page.to_dict()}, ensure_ascii=False, indent=2))
        return
    if console.width >= TABLE_WIDTH:
        _print_table(page.chunks, offset)
    else:
        _print_blocks(page.chunks, offset)
    shown = f"chunks {offset + 1}-{offset + len(page.chunks)}" if page.chunks else "no chunks"
    more = f"; next page: --offset {offset + limit}" if page.has_more else ""
    console.print(f"{shown} of knowledge base {safe(name)}{more}", highlight=False)


def _token_counter(settings: EmbeddingSettings) -> Callable[[str], int] | None:
    """The chunker's token count, from the model's tokenizer; None (and a note) when the model is not here."""
    from rag.encoder import load_token_counter
    from rag.errors import ModelNotAvailableError

    try:
        return load_token_counter(settings)
    except ModelNotAvailableError as exc:
        err.print(f"token counts left out: {safe(str(exc).split('. ')[0])}.", highlight=False)
        return None


def _tokens(chunk: ChunkView) -> str:
    return "" if chunk.tokens is None else str(chunk.tokens)


def _print_table(chunks: list[ChunkView], offset: int) -> None:
    table = Table(header_style="bold", show_lines=True)
    for column in ("#", "source", "chunk", "page / heading", "tokens", "text"):
        table.add_column(column, overflow="fold")
    table.add_column("id", no_wrap=True, min_width=ID_WIDTH)  # whole, to be copied (e.g. to `rag explain`)
    for number, chunk in enumerate(chunks, start=offset + 1):
        origin = chunk.provenance
        table.add_row(str(number), safe(origin.doc_id or origin.source), str(origin.chunk_index),
                      safe(_where(origin)), _tokens(chunk), safe(chunk.text, multiline=True),
                      chunk.id)
    console.print(table)


def _print_blocks(chunks: list[ChunkView], offset: int) -> None:
    """One block per chunk: a line of where it is from, its whole id on a line of its own, then its text."""
    for number, chunk in enumerate(chunks, start=offset + 1):
        origin = chunk.provenance
        where = " · ".join(part for part in (
            f"#{number}", safe(origin.doc_id or origin.source), f"chunk {origin.chunk_index}",
            safe(_where(origin)), f"{chunk.tokens} tokens" if chunk.tokens is not None else "",
        ) if part)
        console.rule(style="dim")
        console.print(where, style="bold", highlight=False)
        console.print(f"id {chunk.id}", soft_wrap=True, highlight=False)
        console.print(safe(chunk.text, multiline=True), highlight=False)
    if chunks:
        console.rule(style="dim")


def _print_documents(name: str, entries: list[DocumentEntry], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"kb": name, "documents": [e.to_dict() for e in entries]}, ensure_ascii=False, indent=2))
        return
    table = Table(header_style="bold")
    for column in ("document", "source", "title", "chunks"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(safe(entry.doc_id), safe(entry.source), safe(entry.title), str(entry.chunks))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(chunks)
