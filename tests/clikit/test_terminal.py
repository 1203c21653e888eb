"""The helper both CLIs print outside text through: Rich markup kept as text, control characters visible."""

from __future__ import annotations

import io

from rich.console import Console

from clikit.terminal import safe, visible


def printed(markup: str) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(markup, highlight=False)
    return out.getvalue()


def test_item4_markup_and_control_characters_are_shown_as_text() -> None:
    name = "\x1b[2J[red]x\u202etxt.exe\x9b\x07[/red]\\[bold]"
    shown = printed(safe(name))
    assert shown == "\\x1b[2J[red]x\\u202etxt.exe\\x9b\\x07[/red]\\[bold]\n"
    assert not any(ord(c) < 32 and c != "\n" for c in shown)


def test_item4_multiline_text_keeps_its_lines_one_line_text_does_not() -> None:
    answer = "First paragraph.\n\n\tIndented [1].\r\x1b]0;title\x07"
    assert visible(answer, multiline=True) == "First paragraph.\n\n\tIndented [1].\\r\\x1b]0;title\\x07"
    assert visible("two\nlines\t.txt") == "two\\nlines\\t.txt"


def test_item4_undecodable_file_name_bytes_are_shown_not_raised() -> None:
    name = b"caf\xe9-\xff.txt".decode("utf-8", "surrogateescape")  # how os.listdir returns a Latin-1 name
    assert visible(name) == "caf\\xe9-\\xff.txt"
    assert printed(safe(name)) == "caf\\xe9-\\xff.txt\n"
