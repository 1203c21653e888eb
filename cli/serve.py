"""`rag serve`: the HTTP API (OpenAI-compatible chat, retrieval with scores, Dify's External Knowledge API)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ConfigOption, err
from clikit import safe
from rag.config import load_settings


def serve(
    host: Annotated[str | None, typer.Option(
        help="Address to listen on (api.host, 127.0.0.1). Any other address needs api.keys (RAG_API__KEYS).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (api.port, 8000).")] = None,
    config: ConfigOption = None,
) -> None:
    """Start the HTTP API on http://HOST:PORT (OpenAPI docs at /docs)."""
    from api.server import check_bind
    from api.server import serve as run_server

    settings = load_settings(config)
    shown_host = host or settings.api.host
    check_bind(settings.api, shown_host)
    err.print(f"ragscope API on http://{safe(shown_host)}:{port or settings.api.port} (docs at /docs); "
              f"knowledge bases at {safe(settings.milvus.uri)}", highlight=False)
    run_server(settings, host, port)


def register(app: typer.Typer) -> None:
    app.command()(serve)
