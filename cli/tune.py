"""`rag tune --judgments FILE`: fusion weights learned from relevance marks, cross-validated, written as a config."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from cli.common import ConfigOption, JsonOption, KbOption, console, err, open_retriever
from cli.evaluate import parse_ks
from clikit import safe
from rag.config import load_settings

if TYPE_CHECKING:  # imported when the command runs: a usage error is reported without loading pymilvus
    from rag.workbench.tune import TuneReport

DEFAULT_OUT = Path("tuned.yaml")


def tune(
    judgments: Annotated[Path, typer.Option(help="judgments.jsonl written by the web app.", show_default=False)],
    kb: KbOption = None,
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds (at most one per question).")] = 5,
    k: Annotated[str, typer.Option("--k", help="Cut-offs of Recall@k, comma-separated.")] = "1,5,10",
    out: Annotated[Path, typer.Option(help="Config file to write the learned fusion to.")] = DEFAULT_OUT,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Learn the fusion weights (dense / sparse / colbert / rerank) and rrf or weighted from your judgments."""
    ks = _ks(k)
    if config is not None and out.resolve() == config.resolve():
        raise typer.BadParameter("--out must not be the --config file itself (it would lose its comments); "
                                 "write a new file and pass that with --config.", param_hint="--out")
    from rag.evaluation import load_judgments
    from rag.workbench.tune import tune as learn
    from rag.workbench.tuned_config import write_tuned_config

    settings = load_settings(config)
    name = kb or settings.kb.name
    qrels = load_judgments(judgments, name)
    with open_retriever(settings, name) as retriever, _progress() as progress:
        report = learn(retriever, qrels, folds=folds, ks=ks, progress=progress)
    written = write_tuned_config(out, report.retrieval_changes(), config)
    if as_json:
        print(json.dumps({**report.to_dict(), "config_file": str(written)}, ensure_ascii=False, indent=2))
        return
    show(report, written)


def _ks(value: str) -> list[int]:
    from rag.errors import InvalidInputError

    try:
        return parse_ks(value)
    except InvalidInputError as exc:
        raise typer.BadParameter(str(exc), param_hint="--k") from None


@contextmanager
def _progress() -> Iterator:
    """``progress(stage, done, total)`` drawing a bar on stderr (nothing when stderr is not a terminal)."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err,
                  transient=True, disable=not err.is_terminal) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(safe(stage), total=total)
            bar.update(tasks[stage], completed=done)

        yield update


def folds_table(report: TuneReport) -> Table:
    """One row per fold: its held-out questions, the fusion learned without them, nDCG@10 and Recall@k before/after."""
    names = ["ndcg@10", *(f"recall@{k}" for k in report.ks)]
    table = Table(header_style="bold", title=safe(f"{report.kb}: {report.questions} questions, "
                                                  f"{len(report.folds)} folds (held out)"))
    for column in ("fold", "questions", "learned on the other folds", *(f"{n} before → after" for n in names)):
        table.add_column(column)
    for fold in report.folds:
        table.add_row(str(fold.fold), str(len(fold.questions)), safe(fold.learned.describe()),
                      *(_change(fold.before[n], fold.after[n]) for n in names))
    table.add_row("all", str(report.questions), "", *(_change(report.held_out_before[n], report.held_out_after[n])
                                                       for n in names), style="bold")
    return table


def show(report: TuneReport, written: Path) -> None:
    console.print(folds_table(report))
    console.print(f"current: {safe(report.start.describe())}", highlight=False)
    console.print(f"learned on all {report.questions} questions ({report.tried} fusions tried): "
                  f"{safe(report.learned.describe())}", highlight=False)
    verdict = "changed" if report.changed else "the current fusion, kept"
    console.print(f"chosen: [bold]{safe(report.chosen.describe())}[/bold] ({verdict})", highlight=False)
    if report.skipped:
        console.print(f"{report.skipped} question(s) without a chunk marked relevant were left out", highlight=False)
    if report.rerank_pairs:
        console.print(f"the cross-encoder scored {report.rerank_pairs} (question, chunk) pairs, each once",
                      highlight=False)
    for note in report.notes:
        console.print(f"note: {safe(note)}", highlight=False)
    console.print(f"written to {safe(written)}; use it with --config {safe(written)}", highlight=False)


def _change(before: float, after: float) -> str:
    return f"{before:.3f} → {after:.3f}"


def register(app: typer.Typer) -> None:
    app.command()(tune)
