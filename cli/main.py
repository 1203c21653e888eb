"""The `rag` console script: search, ask, similarity, eval and ui."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli import evaluate, search, similarity
from cli.common import ConfigOption
from ingest.cli import run_app

HELP = (
    "Ask and search your knowledge bases with explainable scores (bge-m3 dense + sparse on Milvus, answers "
    "from a local Ollama model). Ingest documents first with `rag-ingest PATH`."
)
APP_FILE = Path(__file__).resolve().parent.parent / "ui" / "app.py"

app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False, rich_markup_mode=None)
search.register(app)
similarity.register(app)
evaluate.register(app)


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 8501,
    address: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 to share on your network).")] = (
        "127.0.0.1"
    ),
    config: ConfigOption = None,
) -> None:
    """Start the web app (Streamlit) on http://ADDRESS:PORT."""
    env = dict(os.environ)
    if config:
        env["RAG_CONFIG"] = str(config.resolve())
    command = [sys.executable, "-m", "streamlit", "run", str(APP_FILE), "--server.port", str(port),
               "--server.address", address, "--browser.gatherUsageStats", "false"]
    raise typer.Exit(subprocess.call(command, env=env))


def main() -> None:
    """Console-script entry point of `rag`."""
    run_app(app, sys.argv[1:], "rag")


if __name__ == "__main__":
    main()
