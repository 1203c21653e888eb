"""Text from files, documents, the LLM and errors made safe to print with Rich: no markup, no control codes.

A file name such as ``\\x1b[2J[red]x.txt`` would otherwise clear the user's terminal (the escape sequence) and
lose its brackets (Rich markup). Both CLIs print every such text through :func:`safe` (for ``print`` and
table cells) or :func:`visible` (for ``Console.out``, which does not parse markup).
"""

from __future__ import annotations

import re

from rich.markup import escape

# C0 and C1 control characters, DEL, and the bidirectional controls that reorder what a line shows
# ("Trojan source"); lone surrogates stand for bytes of a file name that are not valid UTF-8.
_OTHER = r"\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_ONE_LINE = re.compile(rf"[\x00-\x1f{_OTHER}]")
_MULTILINE = re.compile(rf"[\x00-\x08\x0b-\x1f{_OTHER}]")  # keeps \t and \n


def _shown(match: re.Match[str]) -> str:
    char = match.group()
    if "\udc80" <= char <= "\udcff":  # os.fsdecode's stand-in for a non-UTF-8 byte of a file name
        return f"\\x{ord(char) - 0xDC00:02x}"
    return char.encode("unicode_escape", errors="backslashreplace").decode("ascii")


def visible(text: object, *, multiline: bool = False) -> str:
    """``str(text)`` with control characters written as escapes (ESC as ``\\x1b``); with ``multiline``,
    newlines and tabs are kept as they are."""
    pattern = _MULTILINE if multiline else _ONE_LINE
    return pattern.sub(_shown, str(text))


def safe(text: object, *, multiline: bool = False) -> str:
    """:func:`visible` text with Rich markup escaped, for ``Console.print``, titles and table cells."""
    return escape(visible(text, multiline=multiline))
