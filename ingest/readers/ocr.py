"""OCR of page images with RapidOCR: PP-OCRv4 detection and recognition (Chinese + English) as ONNX models that
ship inside the rapidocr-onnxruntime wheel, run by onnxruntime on the CPU; nothing is downloaded.

Also the test of whether a PDF page's own text layer is usable, and the one-line descriptions of what was OCR'd.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from ingest.readers.base import ReadError
from ingest.readers.sections import one_line

if TYPE_CHECKING:  # the engine (onnxruntime, OpenCV) loads on the first page that needs OCR
    from PIL.Image import Image
    from rapidocr_onnxruntime import RapidOCR

OcrMode = Literal["auto", "always", "never"]
PageProgress = Callable[[int, int], None]  # (pages OCR'd so far, pages to OCR in this file)

MIN_USABLE_SHARE = 0.5  # a text layer is garbage when fewer than half of its visible characters are readable
_UNREADABLE_CATEGORIES = {"Co", "Cn", "Cs", "Cc", "Cf"}  # private use, unassigned, surrogates, controls, format
_CID = re.compile(r"\(cid:\d+\)")  # how extractors show glyphs without a Unicode mapping


@dataclass(frozen=True)
class OcrOptions:
    """``mode``: auto (pages without a usable text layer, and images), always (every PDF page), never;
    ``max_pages``: a file needing OCR on more pages than this fails with a reason instead."""

    mode: OcrMode = "auto"
    max_pages: int = 200


def too_many_pages(pages: int, options: OcrOptions) -> ReadError:
    """The reason for a file that needs OCR on more pages than ``options.max_pages``."""
    return ReadError(f"needs OCR on {pages} page{'s' if pages != 1 else ''}, more than ingest.ocr_max_pages "
                     f"({options.max_pages}); raise it to ingest this file")


def usable_text(text: str) -> bool:
    """Whether a page's extracted text is worth keeping: it has a letter or digit, and at least half of its
    visible characters are readable (not private-use, unassigned or control characters, U+FFFD or ``(cid:N)``)."""
    visible = "".join(_CID.sub("\ufffd", text).split())
    if not any(ch.isalnum() for ch in visible):
        return False
    readable = sum(1 for ch in visible if ch != "\ufffd" and unicodedata.category(ch) not in _UNREADABLE_CATEGORIES)
    return readable >= MIN_USABLE_SHARE * len(visible)


@cache
def _engine() -> RapidOCR:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:  # OpenCV (a RapidOCR dependency) needs libGL and GLib from the system
        raise ReadError(f"OCR is unavailable: {one_line(exc)}; on Debian/Ubuntu install the system libraries "
                        "with `apt-get install libgl1 libglib2.0-0`, or set ingest.ocr: never") from exc

    logging.getLogger("RapidOCR").setLevel(logging.ERROR)  # it logs model paths and warnings per page
    return RapidOCR()


def recognise(image: Image) -> str:
    """The text of ``image``, one line per line of text in reading order (top to bottom, left to right)."""
    # No angle classifier: on upright pages it turned whole lines upside down (CER 0.23 instead of 0.003 on
    # benchmarks/ocr_speed.py's page), and it only knows 0 and 180 degrees anyway.
    result, _elapsed = _engine()(_on_white(image), use_cls=False)
    return "\n".join(_join(line) for line in _lines(result or []))


def _on_white(image: Image) -> Image:
    """RGB, transparent parts white: a transparent background is often black underneath, as dark as the text."""
    from PIL import Image as PILImage

    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = PILImage.new("RGB", rgba.size, "white")
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return image.convert("RGB")


def _lines(boxes: Iterable[list[Any]]) -> list[list[tuple[float, str]]]:
    """Text boxes ``[corners, text, score]`` grouped into lines: a box whose vertical middle lies within a
    line's height joins it; lines top to bottom, boxes in a line left to right."""
    lines: list[tuple[float, float, list[tuple[float, str]]]] = []  # top, bottom, (left, text)
    for corners, text, _score in sorted(boxes, key=lambda b: min(y for _x, y in b[0])):
        ys = [y for _x, y in corners]
        top, bottom, left = min(ys), max(ys), min(x for x, _y in corners)
        middle = (top + bottom) / 2
        for index, (line_top, line_bottom, items) in enumerate(lines):
            if line_top <= middle <= line_bottom:
                items.append((left, str(text)))
                lines[index] = (min(top, line_top), max(bottom, line_bottom), items)
                break
        else:
            lines.append((top, bottom, [(left, str(text))]))
    return [sorted(items) for _top, _bottom, items in lines]


def _join(items: list[tuple[float, str]]) -> str:
    """One line's boxes: Chinese next to Chinese without a space, anything else with one."""
    out = ""
    for _left, text in items:
        text = text.strip()
        if out and text and not (_wide(out[-1]) and _wide(text[0])):
            out += " "
        out += text
    return out


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in {"W", "F"}


def describe_ocr(chunk_metadata: Iterable[Mapping[str, Any]]) -> str:
    """What was OCR'd, from chunk metadata: ``pages 2, 4-6``, or ``image`` for an image without pages; ``""``."""
    ocr = [meta for meta in chunk_metadata if meta.get("ocr")]
    pages = sorted({int(meta["page"]) for meta in ocr if isinstance(meta.get("page"), int)})
    if not pages:
        return "image" if ocr else ""
    runs: list[list[int]] = []
    for page in pages:
        if runs and page == runs[-1][-1] + 1:
            runs[-1].append(page)
        else:
            runs.append([page])
    words = [str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs]
    return ("page " if len(pages) == 1 else "pages ") + ", ".join(words)
