"""Bytes to text: a deterministic encoding guess for UTF-8/16/32, GB18030 Chinese, then charset-normalizer.

Order: byte-order marks, strict UTF-8, BOM-less UTF-16 (NUL bytes at alternating positions), Western
European CP1252 (a superset of Latin-1's text) when its non-ASCII bytes stand mostly alone between ASCII
(accented letters inside words, where Chinese/Japanese/Korean encodings put two or more high bytes
together), decode to Western letters and punctuation and charset-normalizer finds no better codepage,
strict GB18030 when the result reads as common Chinese, then charset-normalizer's best guess. Data that is
none of these, or decodes to mostly control characters, is rejected as binary.

Known limits: short EUC-KR (Korean) text is also valid GB2312 and is read as Chinese; a short Central
European (CP1250) text that gives charset-normalizer no evidence is read as CP1252.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from ingest.readers.base import ReadError

_BOMS = [  # UTF-32 first: its little-endian BOM starts with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
]
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_MAX_CONTROL_SHARE = 0.05
_HIGH_RUNS = re.compile(rb"[\x80-\xff]+")
_WESTERN_PUNCTUATION = frozenset("\u00a0‘’‚“”„–—…€•«»°§©®™·¿¡")
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x3000, 0x303F), (0xFF00, 0xFFEF), (0x2000, 0x206F))


def decode_text(data: bytes) -> str:
    """Decode ``data`` to text with ``\\n`` newlines and no BOM; raise ReadError for binary data."""
    return _check_text(_decode(data)).replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(encoding, errors="replace")
    if b"\x00" in data:
        text = _utf16_without_bom(data)
        if text is None:
            raise ReadError("binary content, not text (contains NUL bytes)")
        return text
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for guess in (_western, _chinese):
        text = guess(data)
        if text is not None:
            return text
    best = from_bytes(data).best()
    if best is None:
        raise ReadError("binary content, not text (no text encoding fits)")
    return str(best).lstrip("\ufeff")


def _utf16_without_bom(data: bytes) -> str | None:
    """BOM-less UTF-16, else None.

    Clear when NUL bytes sit almost only at odd (LE) or even (BE) positions, as in mostly-ASCII text;
    Chinese text has few NULs, so a decode that gives almost only CJK and ASCII characters is taken too.
    """
    if len(data) < 4 or len(data) % 2:
        return None
    pairs = len(data) // 2
    even_nuls = data[0::2].count(0) / pairs
    odd_nuls = data[1::2].count(0) / pairs
    if odd_nuls >= 0.3 and even_nuls <= 0.02:
        return _strict(data, "utf-16-le")
    if even_nuls >= 0.3 and odd_nuls <= 0.02:
        return _strict(data, "utf-16-be")
    for encoding in ("utf-16-le", "utf-16-be"):
        text = _strict(data, encoding)
        plain = sum(1 for c in text or "" if _is_cjk(c) or " " <= c <= "~" or c in "\t\n\r")
        if text and plain >= 0.95 * len(text):
            return text
    return None


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _is_cjk(char: str) -> bool:
    return any(lo <= ord(char) <= hi for lo, hi in _CJK_RANGES)


def _western(data: bytes) -> str | None:
    """Strict CP1252 ("café naïve résumé", "Grüße", “quotes” – €5), or None.

    Taken when most runs of non-ASCII bytes are one byte long, nearly every non-ASCII character it gives is
    a Western letter or punctuation mark, and charset-normalizer rates it at least as well as its best guess
    (on a tie that detector picks the first codepage it tried, often CP1250, so "naïve" became "naďve").
    Known limit: a short Central European text without such evidence is read as CP1252 too.
    """
    runs = [len(run) for run in _HIGH_RUNS.findall(data)]
    if not runs or sum(1 for n in runs if n == 1) < 0.5 * len(runs):
        return None
    text = _strict(data, "cp1252")
    if text is None:
        return None
    wide = [c for c in text if ord(c) > 0x7F]
    western = sum(1 for c in wide if c in _WESTERN_PUNCTUATION or (c.isalpha() and c not in "ªº"))
    if western < 0.95 * len(wide):
        return None
    as_cp1252 = from_bytes(data, cp_isolation=["cp1252"]).best()
    best = from_bytes(data).best()
    if as_cp1252 is None or (best is not None and (as_cp1252.chaos > best.chaos
                                                   or as_cp1252.coherence < best.coherence)):
        return None
    return text


def _chinese(data: bytes) -> str | None:
    """Strict GB18030 decode, kept only if the non-ASCII text is common (GB2312) Chinese characters."""
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return None
    wide = [c for c in text if ord(c) > 0x7F]
    if not wide:
        return None
    common = sum(1 for c in wide if _is_cjk(c) and _in_gb2312(c))
    return text if common / len(wide) >= 0.9 else None


def _in_gb2312(char: str) -> bool:
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(text: str) -> str:
    if text:
        controls = len(_CONTROL.findall(text))
        if controls / len(text) > _MAX_CONTROL_SHARE:
            share = round(100 * controls / len(text))
            raise ReadError(f"binary content, not text ({share}% control characters)")
    return text
