"""Token-bounded chunking with the embedding model's own tokenizer.

langchain-text-splitters does the splitting on paragraph, line and sentence ends (Chinese 。！？； and
English .!?;), then clauses and words. Its merge estimates token counts by adding up the pieces, so every
chunk is counted again and any that is still over the limit is cut on token boundaries.

Speed: a piece's count is the sum of its words' counts (``ingest.token_count``: bge-m3's and BERT's
tokenizers split on whitespace first), each distinct word tokenised once with the tokenizer's Rust backend,
so the splitter's many overlapping pieces cost dictionary look-ups, not tokenisations; the counts are exactly
the tokenizer's, so the chunks are too. Text longer than ``WINDOW_CHARS`` is split window by window, each
window ending at the strongest separator in its second half, so the work and memory per step stay bounded,
time grows linearly with the size, and ``on_progress`` reports after every window. A chunk never spans two
windows.

CHUNKER_VERSION stays "1": text of up to one window is chunked exactly as before, so existing knowledge bases
are not re-encoded. A section longer than a window that was stored before keeps its (equally valid) chunks
until its file changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter
from tokenizers import Tokenizer

from ingest.token_count import WordTokenCounter

SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", ". ", "! ", "? ", "; ", "，", ", ", "、", " ", ""]
CHUNKER_VERSION = "1"
WINDOW_CHARS = 100_000

ProgressCallback = Callable[[int, int], None]  # (characters done, characters in all)


class TokenChunker:
    """Splits text into chunks of at most ``chunk_tokens`` tokens, consecutive chunks sharing ``overlap_tokens``."""

    def __init__(self, tokenizer: Any, chunk_tokens: int, overlap_tokens: int) -> None:
        """``tokenizer``: the embedding model's (a transformers fast tokenizer), or its tokenizers JSON."""
        self.tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        # A private copy of the Rust tokenizer without truncation or padding: counts are exact at any length.
        json = tokenizer if isinstance(tokenizer, str) else tokenizer.backend_tokenizer.to_str()
        self.backend = Tokenizer.from_str(json)
        self.backend.no_truncation()
        self.backend.no_padding()
        self.counter = WordTokenCounter(self.backend)
        self._counts: dict[str, int] = {}
        self.splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_tokens,
            chunk_overlap=overlap_tokens,
            length_function=self._cached_count,
            separators=SEPARATORS,
            keep_separator="end",
            strip_whitespace=True,
        )

    def count(self, text: str) -> int:
        """Tokens in ``text`` without special tokens (as ``len(tokenizer.tokenize(text))``)."""
        return self.counter.count(text)

    def _cached_count(self, text: str) -> int:
        count = self._counts.get(text)
        if count is None:
            count = self._counts[text] = self.count(text)
        return count

    def split(self, text: str, on_progress: ProgressCallback | None = None) -> list[str]:
        """Chunks of ``text`` in order; none empty, none over the token limit."""
        chunks: list[str] = []
        for start, end in windows(text):
            self._counts.clear()  # bounded memory: pieces are looked up again only within one window
            for piece in self.splitter.split_text(text[start:end]):
                piece = piece.strip()
                if not piece:
                    continue
                if self.count(piece) <= self.chunk_tokens:
                    chunks.append(piece)
                else:
                    chunks.extend(self._cut_by_tokens(piece))
            if on_progress is not None:
                on_progress(end, len(text))
        self._counts.clear()
        return chunks

    def _cut_by_tokens(self, text: str) -> list[str]:
        offsets = self.backend.encode(text, add_special_tokens=False).offsets
        out = []
        start, step = 0, self.chunk_tokens
        while start < len(offsets):
            window = offsets[start : start + step]
            piece = text[window[0][0] : window[-1][1]].strip()
            taken = len(window)
            if piece and len(window) > 1 and self.count(piece) > self.chunk_tokens:
                # Re-tokenising a slice can add a token at its edge: give the last token to the next window.
                taken -= 1
                piece = text[window[0][0] : window[-2][1]].strip()
            if piece:
                out.append(piece)
            start += taken
        return out


def windows(text: str, size: int = WINDOW_CHARS) -> Iterator[tuple[int, int]]:
    """(start, end) spans covering ``text``: at most ``size`` characters each, ending after the strongest
    separator found in the second half of the span (a paragraph end before a sentence end before a space)."""
    start = 0
    while len(text) - start > size:
        limit = start + size
        end = limit
        for separator in SEPARATORS[:-1]:
            found = text.rfind(separator, start + size // 2, limit)
            if found != -1:
                end = found + len(separator)
                break
        yield start, end
        start = end
    yield start, len(text)
