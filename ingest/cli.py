"""`rag-ingest`: put documents into a knowledge base, list them, delete them.

Shape: `rag-ingest PATH...` ingests (it is short for `rag-ingest add PATH...`); the first word selects a
command only when it is one of COMMANDS. A file or folder named like a command is written ./list or after
`--` (`rag-ingest -- list`), so a path is never taken for a command; the same goes for a path starting with
`-`, which would be taken for an option (`rag-ingest ./-name.txt`; a usage error says so).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from clikit import ConfigOption, KbOption, console, err, flag_overrides, kb_name, run_app, safe
from rag.config import Settings, load_settings

COMMANDS = ("add", "list", "kbs", "delete", "drop")
HELP = (
    "Ingest documents into a knowledge base (a Milvus collection) with bge-m3 dense + sparse vectors.\n\n"
    "`rag-ingest PATH...` is short for `rag-ingest add PATH...`. A path named like a command "
    f"({', '.join(COMMANDS)}) or starting with - must be written ./NAME or after `--`."
)

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["--help", "-h"]})


def _settings(config: Path | None, **overrides: dict[str, object]) -> Settings:
    """The settings of one command: files and environment, then the command's own flags (section dicts)."""
    return load_settings(config, **flag_overrides(**overrides))


def _open_store(settings: Settings):
    from rag.store import MilvusStore

    return MilvusStore(settings.milvus)


@app.command()
def add(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.", show_default=False)],
    kb: KbOption = None,
    config: ConfigOption = None,
    prune: Annotated[bool, typer.Option(help="Delete documents whose file no longer exists on disk.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Show what would change; encode and write nothing.")] = False,
    include: Annotated[list[str] | None, typer.Option(help="Only files matching (gitignore glob; repeatable).")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Skip files matching (gitignore glob; repeatable).")] = None,
    text_field: Annotated[str | None, typer.Option(help="Record files: the field holding the text.")] = None,
    ocr: Annotated[str | None, typer.Option(help="auto | always | never (ingest.ocr): OCR PDF pages without a "
                                            "usable text layer, and images; always: every PDF page.")] = None,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Ingest only if the knowledge base does not exist "
                                           "or holds no chunks (first-start seeding); else do nothing.")] = False,
) -> None:
    """Ingest files and folders: new and changed documents are encoded, unchanged ones skipped."""
    from ingest.pipeline import IngestPipeline
    from ingest.progress import RichProgress, print_summary
    from rag.encoder import load_encoder

    settings = _settings(config, ingest={"text_field": text_field or None, "ocr": ocr})
    if if_empty:
        name = kb or settings.kb.name
        with _open_store(settings) as store:
            chunks = store.open(name).count() if store.exists(name) else 0
        if chunks:
            console.print(f"knowledge base '{name}' already holds {chunks} chunks; nothing ingested (--if-empty)")
            raise typer.Exit(0)
    model = safe(settings.embedding.model)
    with console.status(f"Reading embedding model {model} ..."):  # loaded when a text needs encoding (seconds)
        encoder = load_encoder(
            settings.embedding, data_dir=settings.app.data_dir, deferred=True,
            on_load=lambda: console.print(f"Loading embedding model {model} ...", highlight=False),
        )
    store = _open_store(settings)
    try:
        with (
            IngestPipeline(settings, encoder, store, data_dir=settings.app.data_dir) as pipeline,
            RichProgress(console) as progress,
        ):
            report = pipeline.run(
                [str(p) for p in paths], kb=kb, prune=prune, dry_run=dry_run,
                include=include or None, exclude=exclude, progress=progress,
            )
    finally:
        store.close()
    print_summary(console, report)
    raise typer.Exit(0 if report.ok else 1)


@app.command("list")
def list_documents(kb: KbOption = None, config: ConfigOption = None) -> None:
    """List the documents of a knowledge base with their chunk counts."""
    settings = _settings(config)
    name = kb or settings.kb.name
    with _open_store(settings) as store:
        docs = store.open(name).documents()
    table = Table(title=f"Knowledge base '{safe(name)}': {len(docs)} documents, "
                        f"{sum(d.chunks for d in docs.values())} chunks", header_style="bold")
    table.add_column("document", overflow="fold")
    table.add_column("title", overflow="fold")
    table.add_column("chunks", justify="right")
    for doc in sorted(docs.values(), key=lambda d: d.doc_id):
        table.add_row(safe(doc.doc_id), safe(doc.title), str(doc.chunks))
    console.print(table)


@app.command()
def kbs(config: ConfigOption = None) -> None:
    """List the knowledge bases with document and chunk counts."""
    settings = _settings(config)
    with _open_store(settings) as store:
        table = Table(title=f"Knowledge bases at {safe(store.location)}", header_style="bold")
        for column in ("name", "model", "dim", "documents", "chunks"):
            table.add_column(column, justify="right" if column in {"dim", "documents", "chunks"} else "left")
        for name in store.knowledge_bases():
            base = store.open(name)
            docs = base.documents()
            table.add_row(safe(name), safe(base.model.name), str(base.model.dim), str(len(docs)),
                          str(sum(d.chunks for d in docs.values())))
    console.print(table)


@app.command()
def delete(
    documents: Annotated[list[str], typer.Argument(help="Document ids as shown by `list` (a source path, "
                                                        "or path#row for record files).", show_default=False)],
    kb: KbOption = None,
    config: ConfigOption = None,
) -> None:
    """Delete documents (all their chunks) from a knowledge base. A file path deletes all its rows."""
    from ingest.discovery import display_path

    settings = _settings(config)
    name = kb or settings.kb.name
    documents = [display_path(d) for d in documents]  # a name with non-UTF-8 bytes, as `list` shows it
    with _open_store(settings) as store:
        base = store.open(name)
        by_id = base.documents(documents)
        by_source = base.documents(sources=documents)
        found = {**by_id, **by_source}
        missing = [d for d in documents if d not in by_id and all(x.source != d for x in by_source.values())]
        if found:
            base.delete_documents(sorted(found))
    console.print(f"deleted {len(found)} documents ({sum(d.chunks for d in found.values())} chunks) from "
                  f"'{safe(name)}'", highlight=False)
    if missing:
        err.print(f"[red]not found in '{safe(name)}':[/red] {safe(', '.join(missing))}", highlight=False)
        raise typer.Exit(1)


@app.command()
def drop(
    kb: Annotated[str, typer.Option("--kb", help="Knowledge base to delete (required).", show_default=False,
                                    callback=kb_name)],
    config: ConfigOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a whole knowledge base with all its documents."""
    settings = _settings(config)
    with _open_store(settings) as store:
        docs = store.open(kb).documents()
        if not yes and not typer.confirm(f"Delete knowledge base '{kb}' with {len(docs)} documents?"):
            raise typer.Exit(1)
        store.drop(kb)
    console.print(f"deleted knowledge base '{kb}' ({len(docs)} documents)")


def _with_default_command(argv: list[str]) -> list[str]:
    if argv and argv[0] not in COMMANDS and argv[0] not in {"--help", "-h"}:
        return ["add", *argv]
    return argv


def _dash_path_hint(argv: list[str]) -> str:
    """For a usage error caused by a path that starts with '-' (taken for an option): how to write it."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    paths = [arg for arg in options if arg.startswith("-") and Path(arg).exists()]
    if not paths:
        return ""
    return (f"A path starting with '-' is taken for an option: write it ./{paths[0]}, or after '--' "
            f"(rag-ingest -- {paths[0]}).")


def main() -> None:
    """Console-script entry point of `rag-ingest`."""
    argv = _with_default_command(sys.argv[1:])
    run_app(app, argv, "rag-ingest", usage_hint=_dash_path_hint(argv))


if __name__ == "__main__":
    main()
