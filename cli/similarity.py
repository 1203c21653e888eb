"""`rag similarity A B`: how similar two texts are, by each of bge-m3's scores."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from cli.common import ConfigOption, JsonOption, console, load_encoder_with_status
from clikit import safe
from rag.config import load_settings

LEVEL_STYLES = {"very_similar": "green", "related": "yellow", "unrelated": "red"}


def similarity(
    text_a: Annotated[str, typer.Argument(metavar="A", help="First text.", show_default=False)],
    text_b: Annotated[str, typer.Argument(metavar="B", help="Second text.", show_default=False)],
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Compare two texts: dense (as a percent, with its level), sparse, colbert and hybrid scores."""
    from rag.similarity import compare_texts

    settings = load_settings(config)
    result = compare_texts(load_encoder_with_status(settings), text_a, text_b, settings.retrieval.weights,
                           settings.levels)
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    style = LEVEL_STYLES[result.level]
    console.print(f"dense similarity [bold {style}]{result.dense_percent:.1f}%[/] — [{style}]{result.label}[/]")
    table = Table(header_style="bold", caption=result.formula)
    for name in ("score", "value", "meaning"):
        table.add_column(name)
    table.add_row("dense", f"{result.dense:.4f}", "cosine of the dense vectors: closeness of meaning")
    table.add_row("sparse", f"{result.sparse:.4f}", "lexical match: sum of weight products of shared tokens")
    table.add_row("colbert", f"{result.colbert:.4f}", "late interaction: best token-to-token matches, averaged")
    table.add_row("hybrid", f"{result.hybrid:.4f}", "weighted mean of the three")
    console.print(table)
    if result.matched_terms:
        shared = safe(", ".join(f"{t['term']} ({t['contribution']:.3f})" for t in result.matched_terms[:10]))
        console.print(f"shared terms: {shared}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(similarity)
