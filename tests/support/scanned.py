"""Scanned documents made by the tests: known Chinese + English lines rendered with the Noto CJK font into an
image, wrapped as PDF pages without a text layer; and the character error rate of what OCR read back."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

FONT_GLOB = "NotoSansCJK-Regular.ttc"
FONT_INDEX_SC = 2  # the .ttc's Simplified Chinese face (Noto Sans CJK SC)
DPI = 150
A4_PIXELS = (round(8.27 * DPI), round(11.69 * DPI))

# Characters the tiny test model's tokenizer knows (it is trained on examples/kb), so `rag search` can find them.
LINES = [
    "员工每年享有十五天带薪年假，请提前两周申请。",
    "Employees get fifteen days of paid leave each year.",
    "请假申请须在三天内提交部门负责人审批。",
    "Expense claims must reach the finance team within 30 days.",
]
SECOND_LINES = [
    "病假须提交医院证明，逾期作废。",
    "A lost server room badge must be reported within 24 hours.",
]


@cache
def cjk_font_path() -> Path:
    """Debian's Noto Sans CJK (fonts-noto-cjk, which scripts/test.sh installs)."""
    for folder in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts")):
        for found in sorted(folder.rglob(FONT_GLOB)) if folder.is_dir() else []:
            return found
    raise FileNotFoundError(f"{FONT_GLOB} not found: install the Debian package fonts-noto-cjk (scripts/test.sh does)")


def render_page(lines: list[str], size: tuple[int, int] = A4_PIXELS, font_px: int = 30, top: int = 120) -> Image.Image:
    """A white page (A4 at 150 dpi unless ``size``) with ``lines`` in black from ``top`` down, as a scan gives it."""
    font = ImageFont.truetype(str(cjk_font_path()), font_px, index=FONT_INDEX_SC)
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    for number, line in enumerate(lines):
        draw.text((100, top + number * 2 * font_px), line, font=font, fill=0)
    return page


def image_bytes(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def scanned_pdf(pages: list[Image.Image]) -> bytes:
    """A PDF whose pages are only these images (no text layer), as a scanner writes it."""
    out = io.BytesIO()
    pages[0].save(out, format="PDF", resolution=DPI, save_all=True, append_images=pages[1:])
    return out.getvalue()


def mixed_pdf(text: str, scan: Image.Image, hidden_garbage: str = "") -> bytes:
    """Page 1 with a real text layer (``text``); page 2 a scanned image, optionally under an invisible text layer
    of ``hidden_garbage`` (what a broken font mapping leaves, e.g. ``(cid:3)`` runs)."""
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, invariant=1)
    pdf.drawString(72, 720, text)
    pdf.showPage()
    pdf.drawImage(ImageReader(scan), 0, 0, width=A4[0], height=A4[1])
    if hidden_garbage:
        layer = pdf.beginText(72, 700)
        layer.setTextRenderMode(3)  # invisible, as OCR'd and broken PDFs carry their text layer
        layer.textLine(hidden_garbage)
        pdf.drawText(layer)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def character_error_rate(expected: list[str], recognised: str) -> float:
    """Edit distance (Levenshtein, per character) between the lines and the recognised text, over the expected
    length; spaces are left out of both (OCR may put one between Chinese and Latin text, or drop one)."""
    want = "\n".join("".join(line.split()) for line in expected)
    got = "\n".join("".join(line.split()) for line in recognised.splitlines() if line.strip())
    previous = list(range(len(got) + 1))
    for i, a in enumerate(want, start=1):
        current = [i]
        for j, b in enumerate(got, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1] / len(want)
