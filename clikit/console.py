"""The consoles both CLIs print to: results on stdout, progress and errors on stderr."""

from __future__ import annotations

from rich.console import Console

console = Console()
err = Console(stderr=True)
