"""What the two console scripts (`rag-ingest`, `rag`) share: consoles, options, the error runner, safe output.

Depends on Typer, Rich and ``rag.config`` / ``rag.errors`` only; ``rag`` never imports it.
"""

from clikit.console import console, err
from clikit.options import ConfigOption, KbOption, flag_overrides, kb_name
from clikit.runner import run_app
from clikit.terminal import safe, visible

__all__ = ["ConfigOption", "KbOption", "console", "err", "flag_overrides", "kb_name", "run_app", "safe", "visible"]
