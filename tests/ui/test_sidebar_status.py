"""The sidebar's status block says which numerics the encoder runs with (fp32, or int8 with embedding.quantize)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rag.config import Settings
from tests.ui.test_app import start


@pytest.mark.parametrize(("quantize", "shown"), [("none", "fp32"), ("int8", "int8")])
def test_status_block_shows_the_encoders_precision(
    quantize: str, shown: str, demo_kb: Settings, use_settings: Callable[..., Settings]
) -> None:
    use_settings(demo_kb, embedding={"quantize": quantize, "device": "cpu"})
    at = start()
    line = next(m.value for m in at.sidebar.markdown if "**Encoder**" in m.value)
    assert f"· cpu · {shown} · loaded" in line
