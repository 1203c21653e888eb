"""Exact token counts of many overlapping pieces of text, each distinct word tokenised once.

The tokenizers of the embedding models used here split text on whitespace before anything else and tokenise
every word on its own: bge-m3's XLM-RoBERTa tokenizer (as transformers loads it: ``WhitespaceSplit`` then
``Metaspace``) and BERT's WordPiece (``BertPreTokenizer``). A text's token count is then the sum of its
words' counts, so the splitter, which asks for the count of every piece it considers (and of pieces of
pieces), gets it from a cache of word counts instead of tokenising the same text again and again. Words
missing from the cache are tokenised together in one call. A tokenizer without such a pre-tokenizer (e.g. a
byte-level BPE, whose words keep their leading space) is counted piece by piece, as before.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tokenizers import Tokenizer

# Pre-tokenizers that split on whitespace and drop it: tokens never span two words.
WORD_SPLITTING = {"WhitespaceSplit", "Whitespace", "BertPreTokenizer"}
# Normalizers that act on single characters (or combining sequences), never joining two words.
LOCAL_NORMALIZERS = {
    "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "StripAccents", "Strip", "BertNormalizer", "Precompiled",
}
# Words are split at spaces, tabs and line ends only: every normalizer keeps those as whitespace. Other
# whitespace may not stay whitespace (BERT's normalizer deletes the control character U+0085), and
# str.split() also splits at \x1c-\x1f, which no tokenizer does; a text with any of them is split by
# _PLAIN_SPACES, its words keeping such characters for the tokenizer to handle.
_UNUSUAL_SPACES = re.compile("[\x0b\x0c\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_PLAIN_SPACES = re.compile("[ \t\n\r]+")
MAX_CACHED_CHARS = 4_000_000  # the word cache is emptied beyond this many characters of words


def _words(text: str) -> list[str]:
    """``text`` split at spaces, tabs and line ends (see _UNUSUAL_SPACES)."""
    if _UNUSUAL_SPACES.search(text):
        return [w for w in _PLAIN_SPACES.split(text) if w]
    return text.split()


def counts_by_words(backend: Tokenizer) -> bool:
    """Whether ``backend``'s token count of a text is the sum of the counts of its whitespace-separated words."""
    config = json.loads(backend.to_str())
    pre = config.get("pre_tokenizer") or {}
    first = (pre.get("pretokenizers") or [{}])[0] if pre.get("type") == "Sequence" else pre
    if first.get("type") not in WORD_SPLITTING:
        return False
    normalizer = config.get("normalizer") or {}
    parts = normalizer.get("normalizers", []) if normalizer.get("type") == "Sequence" else [normalizer]
    return all(not part or part.get("type") in LOCAL_NORMALIZERS for part in parts)


class WordTokenCounter:
    """``count(text)`` equals ``len(backend.encode(text, add_special_tokens=False).ids)``, from cached word counts."""

    def __init__(self, backend: Tokenizer) -> None:
        self.backend = backend
        self.by_words = counts_by_words(backend)
        self._words: dict[str, int] = {}
        self._cached_chars = 0

    def count(self, text: str) -> int:
        if not self.by_words:
            return len(self.backend.encode(text, add_special_tokens=False).ids)
        words = _words(text)
        cache = self._words
        if self._cached_chars > MAX_CACHED_CHARS:
            cache.clear()
            self._cached_chars = 0
        missing = [w for w in words if w not in cache]
        if missing:
            missing = list(dict.fromkeys(missing))
            for word, encoding in zip(missing, self._encode_batch(missing), strict=True):
                cache[word] = len(encoding.ids)
                self._cached_chars += len(word)
        return sum(map(cache.__getitem__, words))

    def _encode_batch(self, words: list[str]) -> list[Any]:
        if len(words) == 1:
            return [self.backend.encode(words[0], add_special_tokens=False)]
        return self.backend.encode_batch(words, add_special_tokens=False)
