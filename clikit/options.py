"""Options every command of both CLIs spells the same way: --kb (checked by the kb.name rule) and --config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from rag.config import KB_NAME_RULE, KBSettings


def kb_name(value: str | None) -> str | None:
    """Callback of every --kb option: the kb.name rule (rag.config.KBSettings), as a usage error."""
    if value is not None:
        try:
            KBSettings(name=value)
        except ValidationError:
            raise typer.BadParameter(f"{value!r} is not a knowledge-base name: {KB_NAME_RULE}.") from None
    return value


KbOption = Annotated[str | None, typer.Option("--kb", help="Knowledge base name (default: kb.name setting).",
                                              callback=kb_name)]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML file overriding configs/default.yaml.", show_default=False)
]


def flag_overrides(**sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Settings overrides (``load_settings(config, **overrides)``) from a command's flags: the flags not given
    (None) are left out, and so are sections left empty. ``retrieval={"top_k": None, "mode": "dense"}`` gives
    ``{"retrieval": {"mode": "dense"}}``."""
    given = {name: {k: v for k, v in values.items() if v is not None} for name, values in sections.items()}
    return {name: values for name, values in given.items() if values}
