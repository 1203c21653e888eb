"""A real browser on the real app: `streamlit run ui/app.py` on 127.0.0.1 (tiny model, embedded milvus-lite, the
test-owned Ollama-protocol server), driven by Debian's Chromium (headless) through Playwright.

Needs the Debian package `chromium` (apt-get install -y chromium) and the Python package `playwright`; Playwright's
own browser download is never used. Saves test-output/screenshot-chat.png; with UPDATE_SCREENSHOT=1 it also copies it
to docs/screenshot-chat.png (the README's screenshot), so that a plain test run leaves the working tree clean.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingest.pipeline import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.store import MilvusStore
from tests.support.ollama_server import OllamaTestServer, free_port
from tests.ui.conftest import APP, KB, write_config

ROOT = APP.parent.parent
CHROMIUM = next((p for p in (os.environ.get("CHROMIUM_PATH"), shutil.which("chromium"), "/usr/bin/chromium")
                 if p and Path(p).is_file()), None)
SCRIPT = "<script>alert(1)</script>"
QUESTION = "How many days per week can I work remotely?"
REPLY = ("Employees may work remotely up to three days per week [1]. The security note shows its example tag "
         "as plain text [2].")
DOCUMENTS = {
    "remote-work.md": "# Remote work policy\n\nEmployees may work remotely up to three days per week. "
                      "Fully remote work needs a manager's approval.\n",
    "security-note.txt": f"Security note: a chunk may contain HTML such as {SCRIPT} and the app must show it "
                         "as text, never run it. Remote work laptops must use disk encryption.\n",
    "annual-leave-zh.txt": "年假政策：员工每年享有十五天带薪年假，入职满一年后可申请远程办公。\n",
}


# Scroll the element's scrolling ancestor (Streamlit's main area) to its top.
_SCROLL_TO_TOP = """m => { for (let e = m.parentElement; e; e = e.parentElement) {
    if (e.scrollHeight > e.clientHeight + 5 && getComputedStyle(e).overflowY !== 'visible') { e.scrollTop = 0; } } }"""


@pytest.fixture
def browser_kb(ui_settings: Callable[..., Settings], ui_encoder: Encoder, tmp_path: Path) -> Settings:
    """A small knowledge base with a chunk holding a <script> tag, in an embedded milvus-lite that is closed again
    (released) so that the app's process can open it."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCUMENTS.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = ui_settings(tmp_path, retrieval={"top_k": 5})
    with MilvusStore(settings.milvus) as store:
        report = IngestPipeline(settings, ui_encoder, store).run([docs], kb=KB)
    assert not report.failed and report.added == len(DOCUMENTS)
    return settings


@pytest.fixture
def app_url(browser_kb: Settings, ollama_server: OllamaTestServer, tmp_path: Path) -> Iterator[str]:
    """The app served by `streamlit run` in its own process; yields its URL."""
    settings = browser_kb.model_copy(update={"llm": browser_kb.llm.model_copy(update={"base_url": ollama_server.url})})
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_CONFIG=str(write_config(settings, tmp_path / "config.yaml")), HF_HUB_OFFLINE="1")
    port = free_port()
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
         "--client.toolbarMode", "viewer"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited: {(tmp_path / 'streamlit.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("streamlit did not answer within 120 s") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium); "
                                             "the browser test drives it through Playwright")
def test_chat_in_a_real_browser(app_url: str, ollama_server: OllamaTestServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    ollama_server.behaviour.reply = REPLY
    ollama_server.behaviour.piece_delay_s = 0.03  # a visible stream of pieces
    dialogs: list[str] = []
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1250})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(app_url)
            box = page.get_by_test_id("stChatInputTextArea")
            box.wait_for(timeout=120_000)
            box.fill(QUESTION)
            box.press("Enter")

            answer = page.get_by_test_id("stChatMessage").filter(has_text="three days per week [1]")
            expect(answer.first).to_contain_text(REPLY, timeout=60_000)
            cards = page.locator(".rs-card")
            expect(cards.first).to_be_visible(timeout=30_000)
            assert cards.count() == len(DOCUMENTS)
            expect(cards.first).to_contain_text("dense")

            script_card = cards.filter(has_text=SCRIPT)  # the tag is the card's visible text ...
            expect(script_card).to_have_count(1)
            expect(script_card.locator(".rs-text")).to_contain_text(f"such as {SCRIPT} and the app")
            assert page.locator(".rs-card script").count() == 0  # ... and no element
            page.wait_for_timeout(500)
            assert dialogs == []  # alert(1) never ran

            # The conversation scrolls inside Streamlit's main area: show it from the question down.
            page.get_by_test_id("stChatMessage").first.evaluate(_SCROLL_TO_TOP)
            page.wait_for_timeout(300)
            shot = out / "screenshot-chat.png"
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "screenshot-chat.png")
