"""Running a Typer app as a console script: usage errors as Typer shows them (control characters made
visible), a RagError as one paragraph, and the exit codes both CLIs document."""

from __future__ import annotations

import io
import sys
import warnings
from collections.abc import Callable

import typer

from clikit.console import err
from clikit.terminal import safe, visible
from rag.errors import RagError


def _usage_context(typer_app: typer.Typer, argv: list[str], prog_name: str) -> typer.Context:
    """The context of the command ``argv`` names, for the usage line of an error that did not record one
    (Typer's parser raises "Option '--x' requires an argument" without it)."""
    group = typer.main.get_command(typer_app)
    ctx = group.make_context(prog_name, [], resilient_parsing=True)
    name = next((arg for arg in argv if not arg.startswith("-")), None)
    command = group.get_command(ctx, name) if name and isinstance(group, typer.core.TyperGroup) else None
    if command is not None:
        ctx = command.make_context(name, [], parent=ctx, resilient_parsing=True)
    return ctx


def _show_usage_error(exc: typer.TyperException, hint: str, usage: Callable[[], typer.Context]) -> None:
    """Typer's usual message (Usage: line, "Try ... --help", "Error: ..."), control characters made visible."""
    if hasattr(exc, "ctx") and exc.ctx is None:
        exc.ctx = usage()
    buffer = io.StringIO()
    show = getattr(exc, "show", None)  # Typer's vendored click exceptions; a bare TyperException has none
    if show is not None:
        show(file=buffer)
    else:
        buffer.write(f"Error: {exc.format_message()}\n")
    if hint:
        buffer.write(hint + "\n")
    sys.stderr.write(visible(buffer.getvalue(), multiline=True))


def run_app(typer_app: typer.Typer, argv: list[str], prog_name: str, usage_hint: str = "") -> None:
    """Run a Typer app as a console script: a usage error prints the usage and exits 2 (``usage_hint``
    appended), a RagError becomes a one-paragraph message and exit code 2."""
    warnings.filterwarnings("ignore")
    try:
        code = typer_app(args=argv, prog_name=prog_name, standalone_mode=False)
    except RagError as exc:
        err.print(f"[red]error:[/red] {safe(exc, multiline=True)}", highlight=False)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(1)
    except typer.TyperException as exc:  # usage errors: Typer raises its own (vendored) click exceptions
        _show_usage_error(exc, usage_hint, lambda: _usage_context(typer_app, argv, prog_name))
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
