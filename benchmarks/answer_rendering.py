"""Cost of showing a streamed answer safely (ui.safe_markdown.markdown_html on the text so far).

The chat redraws the whole answer so far at most every 0.1 s and at most a fifth of the time (ui/pages_/chat.py
stream_answer); this prints how long one redraw takes for answers of a few sizes, and what share of a core
redrawing every 0.1 s would cost (capped at 20% by the chat).

    .venv/bin/python benchmarks/answer_rendering.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ui.safe_markdown import markdown_html

PARAGRAPH = ("Employees may work **remotely** up to three days per week [1]; see `policy.md` and "
             "![chart](http://example.com/c.png) [details](http://example.com).\n\n- one\n- two\n\n"
             "| days | who |\n|---|---|\n| 3 | staff |\n\n年假政策：员工每年享有十五天带薪年假 [2]。\n\n")


def main() -> None:
    print(f"{'answer':>8}  {'ms per redraw':>13}  {'core share at 10 redraws/s':>26}")
    for kilobytes in (1, 4, 16, 64):
        text = (PARAGRAPH * (kilobytes * 1024 // len(PARAGRAPH) + 1))[: kilobytes * 1024]
        runs = max(5, 400 // kilobytes)
        start = time.perf_counter()
        for _ in range(runs):
            markdown_html(text)
        ms = (time.perf_counter() - start) / runs * 1000
        print(f"{kilobytes:>6} KB  {ms:>13.2f}  {ms / 100:>25.0%}")


if __name__ == "__main__":
    main()
