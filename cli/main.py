"""The `rag` console script: search, ask, similarity, eval and ui."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli import chunks, evaluate, explain, search, serve, similarity, tune
from cli.common import ConfigOption, err
from clikit import run_app, safe
from rag.config import is_loopback

HELP = (
    "Ask and search your knowledge bases with explainable scores (bge-m3 dense + sparse on Milvus, answers "
    "from a local Ollama model). Ingest documents first with `rag-ingest PATH`."
)
APP_FILE = Path(__file__).resolve().parent.parent / "ui" / "app.py"

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["--help", "-h"]})
search.register(app)
similarity.register(app)
evaluate.register(app)
chunks.register(app)
explain.register(app)
tune.register(app)
serve.register(app)


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 8501,
    address: Annotated[str, typer.Option(
        help="Address to listen on. The app has no login: to share it, keep 127.0.0.1 and put a reverse proxy "
             "with authentication in front of it."
    )] = "127.0.0.1",
    config: ConfigOption = None,
) -> None:
    """Start the web app (Streamlit) on http://ADDRESS:PORT."""
    env = dict(os.environ)
    if config:
        env["RAG_CONFIG"] = str(config.resolve())
    if not is_loopback(address):
        err.print(f"[yellow]warning:[/yellow] the web app has no login; anyone who can reach {safe(address)}:{port} "
                  "can read your knowledge bases, upload and delete documents, and use your model. To share it, "
                  "keep 127.0.0.1 and put a reverse proxy with authentication in front of it.", highlight=False)
    command = [sys.executable, "-m", "streamlit", "run", str(APP_FILE), "--server.port", str(port),
               "--server.address", address, "--browser.gatherUsageStats", "false"]
    if os.name == "posix":
        # Streamlit takes this process's place, so that a signal to `rag ui` (kill, Ctrl+C, a closed terminal)
        # reaches the server itself and no orphan keeps holding the port.
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, command, env)
    raise typer.Exit(subprocess.call(command, env=env))


def main() -> None:
    """Console-script entry point of `rag`."""
    run_app(app, sys.argv[1:], "rag")


if __name__ == "__main__":
    main()
