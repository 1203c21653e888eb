"""ui.safe_markdown: untrusted Markdown renders without any element that loads from (or links to) the network."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from ui.safe_markdown import WORD_JOINER, code_span, escape_markdown, markdown_html

OUT = "http://127.0.0.1:9"
# What Streamlit's GFM autolink finder matches in text (mdast-util-gfm-autolink-literal).
_AUTOLINKS = re.compile(r"https?://|www\.|[-.\w+]+@[-\w]+(?:\.[-\w]+)+", re.IGNORECASE)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_loads_nothing(html: str) -> None:
    """Only text-formatting elements, and no attribute but the image placeholder's class."""
    parser = _Tags()
    parser.feed(html)
    allowed = {"p", "span", "strong", "em", "code", "pre", "ul", "ol", "li", "blockquote", "h1", "h2", "h3", "h4",
               "h5", "h6", "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "s"}
    assert {tag for tag, _ in parser.tags} <= allowed, html
    assert all(attrs in ([], [("class", "rs-image")], [("style", "text-align:left")], [("style", "text-align:right")],
                         [("style", "text-align:center")]) for _, attrs in parser.tags), html


@pytest.mark.parametrize(("text", "shown"), [
    (f"Look ![exfil]({OUT}/x.gif?d=secret) here", "Look <span class=\"rs-image\">[image: exfil]</span> here"),
    (f"![a][r]\n\n[r]: {OUT}/ref.gif", "<span class=\"rs-image\">[image: a]</span>"),
    (f"[details **now**]({OUT}/l \"t\")", f"details <strong>now</strong> (<code>{OUT}/l</code>)"),
    (f"[a][r]\n\n[r]: {OUT}/ref", f"a (<code>{OUT}/ref</code>)"),
    (f"<{OUT}/auto> and <me@example.com>", f"<code>{OUT}/auto</code> and <code>me@example.com</code>"),
    (f"bare {OUT}/bare and www.example.com", f"bare {OUT}/bare and www.example.com"),
    (f'<img src="{OUT}/raw.gif"> <a href="{OUT}">x</a>', f'&lt;img src=&quot;{OUT}/raw.gif&quot;&gt; &lt;a'),
    (f"&lt;img src={OUT}&gt; &#x3C;img src={OUT}>", f"&lt;img src={OUT}&gt; &lt;img src={OUT}&gt;"),
    (f"<iframe src='{OUT}'></iframe>\n\nnext", "&lt;iframe src='"),
    ("[x](javascript:alert(1)) ![y](data:image/gif;base64,R0lGOD)", "[x](javascript:alert(1)) <span class"),
])
def test_item1_images_links_and_html_become_text(text: str, shown: str) -> None:
    html = markdown_html(text)
    assert_loads_nothing(html)
    assert shown in html


def test_item1_code_spans_and_blocks_keep_their_text_exactly() -> None:
    text = (f"Use `![x]({OUT}/c.gif)` literally.\n\n```python\nimg = \"![x]({OUT}/b.gif)\"\n\nif a < b & c:\n"
            "    pass\n```\n\n    indented <b>code</b>\n")
    html = markdown_html(text)
    assert_loads_nothing(html)
    assert f"<code>![x]({OUT}/c.gif)</code>" in html
    block = f"img = \"![x]({OUT}/b.gif)\"&#10;&#10;if a &lt; b &amp; c:&#10;    pass&#10;"
    assert f"<pre><code>{block}</code></pre>" in html
    assert "<pre><code>indented &lt;b&gt;code&lt;/b&gt;&#10;</code></pre>" in html
    assert "\n\n" not in html  # no blank line: Streamlit keeps it as raw HTML, its Markdown never re-reads it


def test_item1_ordinary_answers_keep_their_formatting() -> None:
    text = ("Remote work: **three days** per week [1], *with approval* [2].\n\n- first\n- second\n\n"
            "1. one\n2. two\n\n> quoted\n\n## Heading\n\n| days | who |\n|---|---|\n| 3 | staff |\n\n"
            "年假政策：员工每年享有十五天带薪年假 [3]。~~old~~")
    html = markdown_html(text)
    for part in ("<strong>three days</strong> per week [1]", "<em>with approval</em> [2]",
                 "<ul>\n<li>first</li>", "<ol>\n<li>one</li>", "<blockquote>\n<p>quoted</p>", "<h2>Heading</h2>",
                 "<th>days</th>", "<td>staff</td>", "年假政策：员工每年享有十五天带薪年假 [3]。<s>old</s>"):
        assert part in html
    assert_loads_nothing(html)


def test_item1_streamlit_extensions_stay_inside_raw_html() -> None:
    """Bare URLs, $LaTeX$, :material/...: icons and :red[...] stay text: every line of the output belongs to an
    HTML block, which CommonMark (and so Streamlit's Markdown) passes through without reading its inside."""
    html = markdown_html(f"$\\href{{{OUT}}}{{x}}$ :material/home: :red[x] {OUT}/bare\n\n```\nA\n\nB\n```")
    tokens = MarkdownIt("commonmark").parse(html)
    assert {t.type for t in tokens} == {"html_block"}
    assert_loads_nothing(html)


@pytest.mark.parametrize("text", [
    f"![x]({OUT}/a.gif)", f"[x]({OUT})", f"<{OUT}/auto>", f"{OUT}/bare", "www.example.com", "me@example.com",
    "<img src=x onerror=alert(1)>", "$x^2$", "**bold** _it_ `code`", "1. not a list", "# not a heading",
    "&amp; &lt;", "a\\b", "年假 [1]",
])
def test_item1_escape_markdown_shows_the_text_exactly_as_text(text: str) -> None:
    escaped = escape_markdown(text)
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(escaped)
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"]
    [inline] = [t for t in tokens if t.type == "inline"]
    assert [c.type for c in inline.children or []] == ["text"]
    assert inline.children[0].content.replace(WORD_JOINER, "") == text
    assert not _AUTOLINKS.search(inline.children[0].content)  # Streamlit's GFM autolink finder sees none


@pytest.mark.parametrize("text", [
    "/models/bge-m3", "/m/a`b", "`x`", "``", "/m/[red]x_y_ ![i](http://127.0.0.1:9/a.gif)", " padded ", "年假",
])
def test_code_span_shows_a_path_exactly_as_code(text: str) -> None:
    tokens = MarkdownIt("commonmark").parse(f"🟢 **Model** · {code_span(text)} · loaded")
    [inline] = [t for t in tokens if t.type == "inline"]
    spans = [c.content for c in inline.children or [] if c.type == "code_inline"]
    assert spans == [text]
