"""Checks shared by the Office Open XML readers (.xlsx, .pptx) before their library opens a file."""

from __future__ import annotations

import io
import zipfile

from ingest.readers.base import ReadError

MAX_UNPACKED_MB = 2048  # a ZIP bomb unpacks to far more than max_file_mb; no real workbook or deck comes near
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a compound file: the old binary formats, or an encrypted package
_ENCRYPTION_STREAM = "EncryptionInfo".encode("utf-16-le")


def check_package(data: bytes, kind: str, old_suffix: str) -> None:
    """ReadError with a one-line reason unless ``data`` is a ZIP package of sane unpacked size.

    ``kind`` names the format in messages ("XLSX"); ``old_suffix`` is its binary predecessor (".xls"). Office
    writes a password-protected file as a compound file holding an ``EncryptionInfo`` stream.
    """
    if data.startswith(_OLE_MAGIC):
        if _ENCRYPTION_STREAM in data:
            raise ReadError(f"encrypted {kind} (password protected)")
        raise ReadError(f"corrupt {kind}: an old binary {old_suffix} file renamed? Save it as .{kind.lower()}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            unpacked = sum(info.file_size for info in package.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ReadError(f"corrupt {kind}: not a ZIP package") from exc
    if unpacked > MAX_UNPACKED_MB * 1024 * 1024:
        raise ReadError(f"{kind} unpacks to {unpacked / 1024 / 1024:.1f} MB, over the {MAX_UNPACKED_MB:g} MB limit")
