"""What the documentation and the messages tell users to run: servers they suggest listen on 127.0.0.1 only."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

# Where users read commands: the docs and the config comments; and for milvus-lite, the messages of the code.
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "configs").glob("*.yaml"))]
CODE = [p for package in ("rag", "ingest", "cli", "clikit", "ui") for p in sorted((ROOT / package).rglob("*.py"))]
MILVUS_LITE_SERVER = re.compile(r"milvus-lite server --[^`'\"\n]*")
STREAMLIT_RUN = re.compile(r"streamlit run [^`'\"\n]*")


def suggestions(pattern: re.Pattern[str], sources: list[Path]) -> list[tuple[Path, str]]:
    return [(path.relative_to(ROOT), match.group()) for path in sources
            for match in pattern.finditer(path.read_text(encoding="utf-8"))]


def test_item2_suggested_milvus_lite_servers_listen_on_loopback() -> None:
    found = suggestions(MILVUS_LITE_SERVER, DOCS + CODE)
    assert len(found) >= 3  # README, configs/default.yaml and the store's messages suggest one
    unbound = [(str(path), command) for path, command in found if "--host 127.0.0.1" not in command]
    assert not unbound, f"milvus-lite server listens on 0.0.0.0 without --host 127.0.0.1: {unbound}"


def test_item2_suggested_streamlit_runs_listen_on_loopback() -> None:
    found = suggestions(STREAMLIT_RUN, DOCS)
    assert found  # the README's "streamlit run ui/app.py"
    unbound = [(str(path), command) for path, command in found if "--server.address 127.0.0.1" not in command]
    assert not unbound, f"Streamlit listens on every interface without --server.address 127.0.0.1: {unbound}"
