"""OCR speed on the CPU: seconds per page for a scanned A4 page of mixed Chinese/English text, through the
reader users run (pypdfium2 rendering + RapidOCR), and sequential vs parallel pages of one document.

Run from the project root (a script, not a test; it prints figures):

    .venv/bin/python benchmarks/ocr_speed.py                 # 3 pages, 2 rounds
    .venv/bin/python benchmarks/ocr_speed.py --pages 4 --rounds 3

The pages are made here: lines of examples/kb (the Chinese leave policy and the English FAQ, alternating
paragraphs) rendered with Noto Sans CJK (Debian fonts-noto-cjk) at 150 dpi, 28-pixel text (about 13 pt), saved
as a PDF with no text layer, as a scanner writes it. Variants take turns in each round (the machine may be
shared); each figure is the best round. "parallel" OCRs the pages in 2 worker processes, each with its own
engine (RapidOCR's default onnxruntime threads), which is how pages of one document would be spread over cores.
The character error rate of page 1 is printed as a check that the figures are for correct reading.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageFont  # noqa: E402

from ingest.readers import OcrOptions  # noqa: E402
from ingest.readers.ocr import recognise  # noqa: E402
from ingest.readers.pdf import read_pdf  # noqa: E402
from tests.support import scanned  # noqa: E402

FONT_PX = 28
MARGIN = 100


def page_lines(count: int) -> list[list[str]]:
    """``count`` pages of lines wrapped to the page width: Chinese and English paragraphs taking turns."""
    kb = ROOT / "examples" / "kb"
    zh = [p for p in (kb / "hr-policy-zh.txt").read_text(encoding="utf-8").split("\n") if len(p) > 20]
    en = [p.lstrip("#-* ") for p in (kb / "product-faq.md").read_text(encoding="utf-8").split("\n") if len(p) > 40]
    font = ImageFont.truetype(str(scanned.cjk_font_path()), FONT_PX, index=scanned.FONT_INDEX_SC)
    width = scanned.A4_PIXELS[0] - 2 * MARGIN
    per_page = (scanned.A4_PIXELS[1] - 2 * MARGIN) // (2 * FONT_PX)
    lines: list[str] = []
    for i in range(max(len(zh), len(en))):
        for paragraph in (zh[i % len(zh)], en[i % len(en)]):
            lines += wrap(paragraph, font, width)
    needed = count * per_page
    lines = (lines * (needed // len(lines) + 1))[:needed]
    return [lines[n * per_page:(n + 1) * per_page] for n in range(count)]


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Lines of at most ``width`` pixels, broken between words (English) or characters (Chinese)."""
    out, line = [], ""
    for piece in (text.split(" ") if text.isascii() else list(text)):
        joined = f"{line} {piece}" if line and text.isascii() else line + piece
        if line and font.getlength(joined) > width:
            out.append(line)
            line = piece
        else:
            line = joined
    return [*out, line] if line else out


def reader(data: bytes) -> tuple[float, list[str]]:
    started = time.perf_counter()
    doc = read_pdf(data, Path("scan.pdf"), OcrOptions(max_pages=10_000))
    return time.perf_counter() - started, [s.text for s in doc.sections]


def sequential(images: list[Image.Image]) -> float:
    started = time.perf_counter()
    for image in images:
        recognise(image)
    return time.perf_counter() - started


def _ocr(image: Image.Image) -> str:
    return recognise(image)


def parallel(images: list[Image.Image], pool: ProcessPoolExecutor) -> float:
    started = time.perf_counter()
    list(pool.map(_ocr, images))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    pages = page_lines(args.pages)
    images = [scanned.render_page(lines, font_px=FONT_PX, top=MARGIN) for lines in pages]
    data = scanned.scanned_pdf(images)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; {args.pages} A4 pages of {len(pages[0])} lines "
          f"({sum(len(line) for line in pages[0])} characters on page 1), {args.rounds} rounds")

    started = time.perf_counter()
    recognise(Image.new("L", (200, 100), 255))  # loads the engine (as the first OCR'd page of a run does)
    print(f"engine load: {time.perf_counter() - started:.2f} s")
    # The reader renders the PDF's pages itself; sequential and parallel OCR the same 150-dpi images.
    best = {"reader": float("inf"), "sequential": float("inf"), "parallel": float("inf")}
    cer = 1.0
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_ocr, [Image.new("L", (200, 100), 255)] * 2))  # each worker loads its engine first
        for round_ in range(1, args.rounds + 1):
            seconds, texts = reader(data)
            cer = scanned.character_error_rate(pages[0], texts[0])
            now = {"reader": seconds, "sequential": sequential(images), "parallel": parallel(images, pool)}
            best = {name: min(best[name], now[name]) for name in best}
            print(f"round {round_}: " + ", ".join(f"{name} {now[name] / args.pages:.2f} s/page" for name in now))
    per_page = {name: seconds / args.pages for name, seconds in best.items()}
    print(f"\nreader (pypdfium2 at 200 dpi + RapidOCR): {per_page['reader']:.2f} s per page (best round); "
          f"character error rate of page 1: {cer:.3f}")
    print(f"OCR of the page images: sequential {per_page['sequential']:.2f} s per page, 2 worker processes "
          f"{per_page['parallel']:.2f} s per page; parallel / sequential = {best['parallel'] / best['sequential']:.2f}")


if __name__ == "__main__":
    main()
