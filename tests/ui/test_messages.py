"""The web app shows paths and error messages exactly: no Markdown from a model path, a URI or a message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from streamlit.testing.v1 import AppTest

from rag.config import Settings
from tests.support.rendered import visible_text
from tests.ui.conftest import APP


def test_missing_model_shows_its_path_and_message_exactly(
    ui_settings: Callable[..., Settings], use_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    missing = tmp_path / "[red]my_models_" / "bge`m3 ![i](a.gif) _x_"
    use_settings(ui_settings(tmp_path), embedding={"model": str(missing)})
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not at.exception, at.exception
    errors = [" ".join(visible_text(e.value).split()) for e in at.sidebar.error]
    assert any("pip install 'ragscope[modelscope]'" in e and repr(str(missing)) in e for e in errors), errors
    status = [visible_text(m.value) for m in at.sidebar.markdown]
    assert any(f"{missing.name} · " in line for line in status), status
