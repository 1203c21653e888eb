"""Writing tuned fusion settings to a YAML config file that ``--config`` (``rag.config.load_settings``) reads.

With a base config (the file the user passed with ``--config``), the new file is that file's content with
the ``retrieval`` keys changed; without one, it holds only those keys, so that it layers over
configs/default.yaml like any other ``--config`` file. Comments of the base file are not kept.
Environment variables (``RAG_RETRIEVAL__WEIGHTS`` ...) still win over the file, as for every config file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rag.config import read_config_file
from rag.errors import ConfigError

HEADER = "# Written by `rag tune`: fusion learned from relevance judgments; use it with --config.\n"


def tuned_config(changes: Mapping[str, Any], base_config: str | Path | None = None) -> dict[str, Any]:
    """The content of the tuned config: ``base_config``'s (if given) with ``retrieval`` updated by ``changes``."""
    data: dict[str, Any] = {}
    if base_config is not None:
        data = read_config_file(Path(base_config))
    retrieval = data.get("retrieval") or {}
    if not isinstance(retrieval, dict):
        raise ConfigError(f"the retrieval section of {base_config} must be a mapping")
    data["retrieval"] = {**retrieval, **{key: _plain(value) for key, value in changes.items()}}
    return data


def write_tuned_config(path: str | Path, changes: Mapping[str, Any], base_config: str | Path | None = None) -> Path:
    """Write :func:`tuned_config` to ``path`` (folders created) and return the path."""
    target = Path(path)
    text = tuned_config_text(changes, base_config)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def tuned_config_text(changes: Mapping[str, Any], base_config: str | Path | None = None) -> str:
    """:func:`tuned_config` as the YAML text written to a file (e.g. for a web-app download), with its header."""
    content = tuned_config(changes, base_config)
    return HEADER + yaml.safe_dump(content, sort_keys=False, allow_unicode=True)


def _plain(value: Any) -> Any:
    """Mappings as plain dicts, so that YAML writes them without Python tags."""
    return {key: _plain(item) for key, item in value.items()} if isinstance(value, Mapping) else value
