"""What the browser tests share: Debian's Chromium driven by Playwright on the app served by `streamlit run`.

Needs the Debian package `chromium` (apt-get install -y chromium) and the Python package `playwright`; Playwright's
own browser download is never used. Screenshots go to test-output/; with UPDATE_SCREENSHOT=1 they are also copied to
docs/ (the README's screenshots), so that a plain test run leaves the working tree clean.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from tests.support.ollama_server import free_port
from tests.support.processes import answers, serving
from tests.ui.conftest import APP, write_config

ROOT = APP.parent.parent
SHOTS = ROOT / "test-output"
CHROMIUM = next((p for p in (os.environ.get("CHROMIUM_PATH"), shutil.which("chromium"), "/usr/bin/chromium")
                 if p and Path(p).is_file()), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install -y chromium); the browser test drives it through "
           "Playwright")

# Scroll the element's scrolling ancestor (Streamlit's main area) to its top.
SCROLL_TO_TOP = """m => { for (let e = m.parentElement; e; e = e.parentElement) {
    if (e.scrollHeight > e.clientHeight + 5 && getComputedStyle(e).overflowY !== 'visible') { e.scrollTop = 0; } } }"""


@contextmanager
def served_app(settings: Settings, work: Path) -> Iterator[str]:
    """The app served by `streamlit run` in its own process with ``settings`` ($RAG_CONFIG); yields its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_CONFIG=str(write_config(settings, work / "config.yaml")), HF_HUB_OFFLINE="1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
         "--client.toolbarMode", "viewer"],
        ready=lambda: answers(f"{url}/_stcore/health", b"ok"), what="streamlit", log=work / "streamlit.log",
        cwd=ROOT, env=env,
    ):
        yield url


@contextmanager
def chromium_page(height: int = 1250) -> Iterator[tuple[Any, list[str]]]:
    """A headless Chromium page 1400 pixels wide, and the messages of the dialogs it opened (each dismissed)."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": height})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            yield page, dialogs
        finally:
            browser.close()


def keep_screenshots(*shots: Path) -> None:
    """Each screenshot holds a picture; with UPDATE_SCREENSHOT=1 it becomes the README's (docs/<name>)."""
    for shot in shots:
        assert shot.stat().st_size > 10_000
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(shot, ROOT / "docs" / shot.name)
