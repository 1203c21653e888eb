"""Running the API with uvicorn: refuse a non-loopback address without keys, then serve until stopped."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from api.auth import check_bind
from rag.config import Settings

__all__ = ["check_bind", "serve"]


def serve(settings: Settings, host: str | None = None, port: int | None = None, log_level: str = "info") -> None:
    """Serve the API on ``host``:``port`` (default api.host / api.port); ConfigError before listening when the
    address is reachable from other machines and no api.keys are set."""
    host = host or settings.api.host
    port = port or settings.api.port
    check_bind(settings.api, host)
    uvicorn.run(create_app(settings, preload=True), host=host, port=port, log_level=log_level,
                timeout_graceful_shutdown=5)
