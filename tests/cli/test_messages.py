"""Messages of the `rag` console script keep their text: Rich markup in a message or a path is shown, not parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import Settings
from tests.conftest import run_cli


@pytest.mark.parametrize("args", [["similarity", "annual leave", "vacation days"], ["search", "annual leave"]])
def test_missing_model_message_keeps_its_brackets(settings: Settings, tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "[red]no_model[/red]"
    result = run_cli(args, settings, program="rag", extra_env={"RAG_EMBEDDING__MODEL": str(missing)})
    message = " ".join(result.stderr.split())
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "pip install 'ragscope[modelscope]'" in message, message
    assert str(missing) in message, message
