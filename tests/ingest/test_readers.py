"""Readers: encodings, formats, record files, and the reasons given for files that cannot be read."""

from __future__ import annotations

import codecs
import errno
import json
import os
import warnings
from pathlib import Path

import pytest

from ingest.readers import SUPPORTED_SUFFIXES, ReaderOptions, ReadError, read_file
from ingest.readers.encoding import decode_text
from tests.ingest.conftest import encrypt_pdf, make_docx, make_pdf

KB = Path(__file__).resolve().parents[2] / "examples" / "kb"
ZH = "员工每年享有十五天带薪年假。\n请在系统中提交申请。"


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def reason(path: Path, options: ReaderOptions | None = None) -> str:
    with pytest.raises(ReadError) as info:
        read_file(path, options)
    return str(info.value)


# --- encodings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        ZH.encode("gbk"),
        "年假申请".encode("gbk"),  # short GBK text, where charset detectors often guess wrong
        ZH.encode("gb18030"),
        b"\xef\xbb\xbf" + ZH.encode("utf-8"),
        b"\xff\xfe" + ZH.encode("utf-16-le"),
        b"\xfe\xff" + ZH.encode("utf-16-be"),
        ZH.encode("utf-16-le"),  # BOM-less, few NUL bytes: recognised as CJK
        ZH.replace("\n", "\r\n").encode("utf-8"),
    ],
    ids=["gbk", "gbk-short", "gb18030", "utf8-bom", "utf16le-bom", "utf16be-bom", "utf16le-nobom", "crlf"],
)
def test_chinese_text_decodes_exactly(tmp_path: Path, data: bytes) -> None:
    expected = ZH if len(data) > 10 else "年假申请"
    assert decode_text(data) == expected
    [doc] = read_file(write(tmp_path, "policy.txt", data))
    assert doc.sections[0].text == expected and doc.content == expected and doc.key is None
    assert doc.title == "policy" and doc.metadata["file_type"] == "txt"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_bomless_utf16_ascii(encoding: str) -> None:
    assert decode_text("Hello, world\nline two".encode(encoding)) == "Hello, world\nline two"


WESTERN = [
    "café naïve résumé",
    "résumé",
    "Año niño señor",
    "Grüße aus München, schöne Straße",
    "Le café est très bon. Naïve résumé du garçon à Noël — « citation » “quotes” €5…",
    "La réunion a lieu à Paris; les employés ont droit à vingt-cinq jours de congés payés.\n" * 40,
]



@pytest.mark.parametrize(
    ("text", "encoding"),
    [(text, enc) for text in WESTERN for enc in ("cp1252", "latin-1") if enc == "cp1252" or "€" not in text],
)
def test_item12_western_european_cp1252_and_latin1_text_is_detected(text: str, encoding: str) -> None:
    assert decode_text(text.encode(encoding)) == text


@pytest.mark.parametrize("text", ["Dobrý den, jak se máte? Děkuji, mám se dobře.", "Zażółć gęślą jaźń, kůň"])
def test_central_european_cp1250_text_is_not_taken_for_cp1252(text: str) -> None:
    assert decode_text(text.encode("cp1250")) == text


@pytest.mark.parametrize(
    "data", [bytes(range(256)) * 8, b"\x89PNG\r\n\x1a\n" + bytes(200), b"ab\x01\x02\x03\x04cd"]
)
def test_binary_data_named_txt_is_rejected(tmp_path: Path, data: bytes) -> None:
    assert reason(write(tmp_path, "photo.txt", data)).startswith("binary content, not text (")


@pytest.mark.parametrize(
    ("name", "data"),
    [("a.txt", b""), ("a.pdf", b""), ("a.docx", b""), ("a.txt", b"  \n\t\n"), ("a.md", b"\xef\xbb\xbf\n"),
     ("a.csv", b"\r\n"), ("a.jsonl", b" ")],
)
def test_empty_files(tmp_path: Path, name: str, data: bytes) -> None:
    assert reason(write(tmp_path, name, data)) == "empty file"


# --- markdown --------------------------------------------------------------------------------------------

MARKDOWN = """Intro before any heading.

# Guide

Welcome.

## Install ##

Run the installer.

```sh
# not a heading
```

### Linux

Use the package.

## Empty

# Appendix
Last words.
"""


def test_markdown_sections_have_heading_paths(tmp_path: Path) -> None:
    [doc] = read_file(write(tmp_path, "guide.md", MARKDOWN))
    assert doc.title == "Guide" and doc.content == MARKDOWN
    got = [(s.metadata.get("heading"), s.text.split("\n")[0]) for s in doc.sections]
    assert got == [
        (None, "Intro before any heading."),
        ("Guide", "Guide"),
        ("Guide > Install", "Install"),
        ("Guide > Install > Linux", "Linux"),
        ("Appendix", "Appendix"),
    ]
    assert "# not a heading" in doc.sections[2].text
    assert all(s.text == s.text.strip() and s.text for s in doc.sections)


def test_markdown_without_h1_is_titled_by_stem(tmp_path: Path) -> None:
    [doc] = read_file(write(tmp_path, "notes.MD", "## Part\ntext"))
    assert doc.title == "notes" and doc.sections[0].metadata == {"heading": "Part"}


SETEXT = """Guide
=====

Welcome.

Install
-------
Run the installer.

~~~
Not a heading
=============
~~~

Appendix
===
Last words.
"""


def test_markdown_setext_headings_are_sections(tmp_path: Path) -> None:
    [doc] = read_file(write(tmp_path, "setext.md", SETEXT))
    assert doc.title == "Guide"
    assert [(s.metadata.get("heading"), s.text) for s in doc.sections] == [
        ("Guide", "Guide\n\nWelcome."),
        ("Guide > Install", "Install\nRun the installer.\n\n~~~\nNot a heading\n=============\n~~~"),
        ("Appendix", "Appendix\nLast words."),
    ]


def test_markdown_front_matter_and_nested_hashes_are_text(tmp_path: Path) -> None:
    text = "---\ntitle: Notes\n---\n> # quoted\n\n    # indented code\n\n# Real\nbody"
    [doc] = read_file(write(tmp_path, "notes.md", text))
    assert doc.title == "Real"
    assert [(s.metadata.get("heading"), s.text) for s in doc.sections] == [
        (None, "---\ntitle: Notes\n---\n> # quoted\n\n    # indented code"),
        ("Real", "Real\nbody"),
    ]


# --- pdf -------------------------------------------------------------------------------------------------


def test_pdf_sections_are_pages(tmp_path: Path) -> None:
    data = make_pdf(["First page about vector clocks.", "", "Third page text."], title="Sync Note")
    [doc] = read_file(write(tmp_path, "note.pdf", data))
    assert doc.title == "Sync Note" and doc.metadata == {"file_type": "pdf", "pages": 3}
    assert [(s.metadata, s.text) for s in doc.sections] == [
        ({"page": 1}, "First page about vector clocks."),
        ({"page": 3}, "Third page text."),
    ]


def test_pdf_without_title_uses_stem(tmp_path: Path) -> None:
    [doc] = read_file(write(tmp_path, "scan-01.pdf", make_pdf(["a", "b"])))
    assert doc.title == "scan-01" and [s.metadata["page"] for s in doc.sections] == [1, 2]


def test_pdf_failures(tmp_path: Path) -> None:
    data = make_pdf(["Secret page one.", "Secret page two."])
    locked = write(tmp_path, "locked.pdf", encrypt_pdf(data, "x"))
    assert reason(locked) == "encrypted PDF (password protected)"
    assert reason(write(tmp_path, "cut.pdf", data[: len(data) // 2])).startswith("corrupt PDF: ")
    assert reason(write(tmp_path, "fake.pdf", b"hello, not a pdf")).startswith("corrupt PDF: ")
    assert reason(write(tmp_path, "scan.pdf", make_pdf(["", ""]))) == (
        "PDF has no text layer (scanned images?); OCR it first"
    )


def test_pdf_with_only_an_owner_password_is_readable(tmp_path: Path) -> None:
    data = encrypt_pdf(make_pdf(["Readable text."]), user_password="", owner_password="owner")
    [doc] = read_file(write(tmp_path, "owner.pdf", data))
    assert doc.sections[0].text == "Readable text."


@pytest.mark.parametrize("algorithm", ["AES-128", "AES-256"])
def test_item12_owner_password_only_aes_pdf_opens(tmp_path: Path, algorithm: str) -> None:
    data = encrypt_pdf(make_pdf(["Readable text."]), user_password="", owner_password="x", algorithm=algorithm)
    [doc] = read_file(write(tmp_path, "owner-aes.pdf", data))
    assert doc.sections[0].text == "Readable text."


def test_item12_aes_pdf_with_a_user_password_asks_for_no_package(tmp_path: Path) -> None:
    data = encrypt_pdf(make_pdf(["Secret."]), user_password="pw", owner_password="x", algorithm="AES-256")
    assert reason(write(tmp_path, "user-aes.pdf", data)) == "encrypted PDF (password protected)"


# --- html ------------------------------------------------------------------------------------------------

HTML = """<html><head><title>Policy Page</title><style>.x { color: red }</style>
<script>var leaked = "SCRIPT";</script></head><body>
<p>Intro   text<br>second line</p><noscript>NOSCRIPT</noscript><template>TEMPLATE</template>
<h1>Remote work</h1><p>Up to <b>three</b> days.</p><div hidden>HIDDEN</div>
<h2>Equipment</h2><ul><li>Laptop</li><li>Monitor</li></ul>
<table><tr><th>Item</th><th>Allowance</th></tr><tr><td>Internet</td><td>30 euros</td></tr></table>
<!-- a comment --><script>track("SCRIPT2")</script></body></html>"""


def test_html_keeps_visible_text_only(tmp_path: Path) -> None:
    [doc] = read_file(write(tmp_path, "policy.htm", HTML))
    assert doc.title == "Policy Page" and doc.metadata == {"file_type": "html"}
    assert [(s.metadata.get("heading"), s.text) for s in doc.sections] == [
        (None, "Intro text\nsecond line"),
        ("Remote work", "Remote work\nUp to three days."),
        ("Remote work > Equipment", "Equipment\nLaptop\nMonitor"),
        ("Remote work > Equipment", "Equipment\n| Item | Allowance |\n| --- | --- |\n| Internet | 30 euros |"),
    ]
    for hidden in ("SCRIPT", "color", "NOSCRIPT", "TEMPLATE", "HIDDEN", "comment"):
        assert hidden not in doc.content


def test_html_meta_charset_and_h1_title(tmp_path: Path) -> None:
    html = '<html><head><meta charset="gb2312"></head><body><h1>远程办公</h1><p>每周最多三天。</p></body>'
    [doc] = read_file(write(tmp_path, "zh.html", html.encode("gbk")))
    assert doc.title == "远程办公" and doc.sections[0].text == "远程办公\n每周最多三天。"


@pytest.mark.parametrize(
    "head",
    [
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">',
        "<meta charset='ISO-8859-1'>",  # read as CP1252, as browsers do: the quotes below are CP1252-only
        '<?xml version="1.0" encoding="windows-1252"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN"'
        ' "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n<html xmlns="http://www.w3.org/1999/xhtml">',
    ],
)
def test_html_declared_charset_forms_are_honoured(tmp_path: Path, head: str) -> None:
    html = f"{head}<body><p>Caf\u00e9 \u201cna\u00efve\u201d \u2013 \u20ac5</p></body>"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # XHTML is read without bs4's "XML parsed as HTML" warning
        [doc] = read_file(write(tmp_path, "w.html", html.encode("cp1252")))
    assert doc.sections[0].text == "Caf\u00e9 \u201cna\u00efve\u201d \u2013 \u20ac5"


def test_html_charset_aliases_browsers_know(tmp_path: Path) -> None:
    html = '<meta charset="x-sjis"><p>年休</p>'  # too short to guess: detection reads it as GB18030
    [doc] = read_file(write(tmp_path, "ja.html", html.encode("shift_jis")))
    assert doc.sections[0].text == "年休"


def test_html_byte_order_mark_wins_over_the_declaration(tmp_path: Path) -> None:
    html = '<meta charset="windows-1252"><p>\u5e74\u5047 caf\u00e9</p>'
    [doc] = read_file(write(tmp_path, "bom.html", codecs.BOM_UTF16_LE + html.encode("utf-16-le")))
    assert doc.sections[0].text == "\u5e74\u5047 caf\u00e9"


@pytest.mark.parametrize("declared", ["utf-8", "no-such-charset", "utf-16"])
def test_html_wrong_or_unusable_declaration_falls_back_to_detection(tmp_path: Path, declared: str) -> None:
    html = f'<meta charset="{declared}"><h1>远程办公</h1><p>每周最多三天。</p>'
    [doc] = read_file(write(tmp_path, "zh.html", html.encode("gbk")))
    assert doc.title == "远程办公" and doc.sections[0].text == "远程办公\n每周最多三天。"


# --- docx ------------------------------------------------------------------------------------------------


def test_docx_headings_and_table(tmp_path: Path) -> None:
    [doc] = read_file(write(tmp_path, "handbook.docx", make_docx()))
    assert doc.title == "Team Handbook"
    assert [(s.metadata.get("heading"), s.text) for s in doc.sections] == [
        (None, "Team Handbook\nRead this first."),
        ("Setup > Laptop", "Laptop\nTurn on disk encryption."),
        ("Contacts", "Contacts\n| Topic | Contact |\n| --- | --- |\n| Payroll | People team |"),
    ]
    [titled] = read_file(write(tmp_path, "titled.docx", make_docx(title="From Properties")))
    assert titled.title == "From Properties"


def test_corrupt_docx(tmp_path: Path) -> None:
    old_doc = write(tmp_path, "old.docx", b"\xd0\xcf\x11\xe0 old binary doc")
    assert reason(old_doc).startswith("corrupt DOCX: not a ZIP package")
    assert reason(write(tmp_path, "cut.docx", make_docx()[:3000])).startswith("corrupt DOCX: ")


# --- record files ----------------------------------------------------------------------------------------


def test_csv_rows_become_documents(tmp_path: Path) -> None:
    data = "id;title;text;lang\n a1 ;First;Hello there;en\na2;Second;你好;zh\na3;Empty;;en\n"
    docs = read_file(write(tmp_path, "rows.csv", data.encode("gbk")))
    assert [(d.key, d.title, d.sections[0].text) for d in docs] == [("a1", "First", "Hello there"),
                                                                   ("a2", "Second", "你好")]
    assert docs[0].metadata == {"file_type": "csv", "row": 1, "fields": {"lang": "en"}}
    row = {"id": " a1 ", "lang": "en", "text": "Hello there", "title": "First"}
    assert docs[0].content == json.dumps(row, sort_keys=True, ensure_ascii=False)


def test_csv_without_text_field_renders_every_field(tmp_path: Path) -> None:
    path = write(tmp_path, "terms.csv", "term\tzh\tdefinition\nvector clock\t向量时钟\tedit counters\n")
    [doc] = read_file(path)
    assert doc.key == "1" and doc.title == "terms #1"
    assert doc.sections[0].text == "term: vector clock\nzh: 向量时钟\ndefinition: edit counters"
    [chosen] = read_file(path, ReaderOptions(text_field="definition", title_field="term"))
    assert (chosen.title, chosen.sections[0].text) == ("vector clock", "edit counters")
    assert chosen.metadata["fields"] == {"zh": "向量时钟"}
    missing = reason(path, ReaderOptions(text_field="body"))
    assert missing == "no field 'body' in rows; fields: term, zh, definition"


def test_json_and_jsonl_rows(tmp_path: Path) -> None:
    rows = [
        {"_id": 7, "content": "Seven", "n": 1.5, "tags": ["x"]},
        {"_id": 8, "body": "unused", "content": "Eight"},
    ]
    for name, data in [
        ("list.json", json.dumps(rows)),
        ("wrapped.json", json.dumps({"version": 2, "items": rows})),
        ("rows.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n"),
    ]:
        docs = read_file(write(tmp_path, name, data))
        assert [(d.key, d.sections[0].text) for d in docs] == [("7", "Seven"), ("8", "Eight")], name
        assert docs[0].metadata["fields"] == {"n": 1.5}  # lists are not scalar metadata
        assert docs[1].metadata["fields"] == {"body": "unused"}


def test_record_errors(tmp_path: Path) -> None:
    lines = ['{"id": "a", "text": "x"}', '{"id": "b", "text": "y"}', '{"id": "a", "text": "z"}']
    dupes = write(tmp_path, "dupes.jsonl", "\n".join(lines))
    assert reason(dupes) == "duplicate id 'a' in rows 1 and 3"
    bad = write(tmp_path, "bad.jsonl", '{"text": "ok"}\n\n{"text": "broken"\n')
    assert reason(bad).startswith("invalid JSON on line 3: ")
    assert reason(write(tmp_path, "bad.json", '[{"text": 1},')).startswith("invalid JSON on line 1: ")
    assert reason(write(tmp_path, "scalar.json", "[1, 2]")) == "JSON row 1 is not an object"
    assert reason(write(tmp_path, "blank.csv", "id,text\n1,\n2,  \n")) == "no rows with text"


def test_item12_csv_with_an_unterminated_quote_gets_a_reason(tmp_path: Path) -> None:
    data = 'id,text\n1,"Leave is fifteen days.\n2,Remote work three days.\n3,Laptops are issued.\n'
    assert reason(write(tmp_path, "open-quote.csv", data)) == (
        'invalid CSV: a quoted field opened on line 2 is never closed (missing ")')
    fine = 'id,text\n1,"a ""quoted"" word"\n2,"two\nlines"\n3,stray " quote\n'
    assert [d.sections[0].text for d in read_file(write(tmp_path, "quotes.csv", fine))] == [
        'a "quoted" word', "two\nlines", 'stray " quote']


# --- read_file -------------------------------------------------------------------------------------------


def test_supported_suffixes() -> None:
    assert {".txt", ".md", ".pdf", ".html", ".htm", ".docx", ".csv", ".json", ".jsonl", ".xlsx", ".xls", ".pptx",
            ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"} == SUPPORTED_SUFFIXES  # images: OCR


def test_path_problems(tmp_path: Path) -> None:
    assert reason(write(tmp_path, "slides.key", b"x")) == "unsupported file type .key"
    assert reason(tmp_path / "missing.txt") == "file not found"
    os.symlink(tmp_path / "b.txt", tmp_path / "a.txt")
    os.symlink(tmp_path / "a.txt", tmp_path / "b.txt")
    assert reason(tmp_path / "a.txt") == "too many levels of symbolic links (symlink loop)"
    (tmp_path / "folder.md").mkdir()
    assert reason(tmp_path / "folder.md") == "not a regular file"


@pytest.mark.parametrize(
    ("error", "expected"),
    [(PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
     (OSError(errno.EIO, "Input/output error"), "Input/output error")],
)
def test_os_errors_become_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, expected: str
) -> None:
    path = write(tmp_path, "secret.txt", "x")

    def fail(self: Path) -> bytes:
        raise error

    monkeypatch.setattr(Path, "read_bytes", fail)  # root ignores chmod 0, so fake the failure
    assert reason(path) == expected


# --- the demo knowledge base -----------------------------------------------------------------------------


def test_every_example_file_reads() -> None:
    files = sorted(p for p in KB.iterdir() if p.suffix in SUPPORTED_SUFFIXES)
    assert {p.suffix for p in files} >= {".md", ".txt", ".html", ".pdf", ".docx", ".csv"}
    texts = []
    for path in files:
        docs = read_file(path)
        assert docs and all(d.sections and d.title for d in docs), path.name
        assert all(s.text and s.text == s.text.strip() for d in docs for s in d.sections), path.name
        texts += [s.text for d in docs for s in d.sections]
    joined = "\n".join(texts)
    assert "vector clock" in joined and "冲突解决" in joined
    [html] = read_file(KB / "remote-work-policy.html")
    assert "three days per week" in html.content and "MARKER" not in html.content  # script, style, noscript
