"""Images (.png .jpg .jpeg .bmp .tif .tiff .webp) via OCR: one section of recognised text lines, or one per
frame (metadata ``page``) for a multi-page TIFF; every section's metadata has ``ocr: True``."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ingest.readers.base import ReadError, Section, SourceDocument
from ingest.readers.ocr import OcrOptions, PageProgress, recognise, too_many_pages
from ingest.readers.sections import one_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
NO_OCR = "an image is read by OCR, which ingest.ocr: never turns off"


def read_image(
    data: bytes, path: Path, ocr: OcrOptions | None = None, on_page: PageProgress | None = None
) -> SourceDocument:
    """The text OCR finds in the image (each frame of a multi-page TIFF is a page); title: the file stem.

    ``ocr`` None or ``mode="never"``: a ReadError, since an image has no text without OCR.
    """
    if ocr is None or ocr.mode == "never":
        raise ReadError(NO_OCR)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # a bomb is refused, not decoded
        try:
            image = Image.open(io.BytesIO(data))
            frames = getattr(image, "n_frames", 1)
            if frames > ocr.max_pages:
                raise too_many_pages(frames, ocr)
            texts = []
            if on_page:
                on_page(0, frames)
            for frame in range(frames):
                image.seek(frame)
                image.load()
                texts.append(_clean(recognise(ImageOps.exif_transpose(image) or image)))
                if on_page:
                    on_page(frame + 1, frames)
        except ReadError:
            raise
        except UnidentifiedImageError as exc:
            raise ReadError(f"corrupt image: not a {path.suffix.lower().lstrip('.') or 'known'} image "
                            "(no image format recognised)") from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ReadError(f"image too large to OCR ({one_line(exc)})") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:  # what Pillow raises for broken data
            raise ReadError(f"corrupt image: {one_line(exc)}") from exc
    if frames == 1:
        sections = [Section(texts[0], {"ocr": True})] if texts[0] else []
    else:
        sections = [Section(text, {"page": n, "ocr": True}) for n, text in enumerate(texts, start=1) if text]
    if not sections:
        raise ReadError("no text found in the image by OCR")
    title = path.stem
    content = f"{title}\n\n" + "\n\n".join(s.text for s in sections)
    metadata: dict[str, object] = {"file_type": path.suffix.lower().lstrip(".")}
    if frames > 1:
        metadata["pages"] = frames
    return SourceDocument(None, title, sections, content, metadata)


def _clean(text: str) -> str:
    return "\n".join(line.strip() for line in text.split("\n") if line.strip())
