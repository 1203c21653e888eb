"""Token-bounded chunking with the embedding model's own tokenizer.

langchain-text-splitters does the splitting on paragraph, line and sentence ends (Chinese 。！？； and
English .!?;), then clauses and words. Its merge estimates token counts by adding up the pieces, so every
chunk is counted again and any that is still over the limit is cut on token boundaries.
"""

from __future__ import annotations

from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", ". ", "! ", "? ", "; ", "，", ", ", "、", " ", ""]
CHUNKER_VERSION = "1"


class TokenChunker:
    """Splits text into chunks of at most ``chunk_tokens`` tokens, consecutive chunks sharing ``overlap_tokens``."""

    def __init__(self, tokenizer: Any, chunk_tokens: int, overlap_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer,
            chunk_size=chunk_tokens,
            chunk_overlap=overlap_tokens,
            separators=SEPARATORS,
            keep_separator="end",
            strip_whitespace=True,
        )

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def split(self, text: str) -> list[str]:
        """Chunks of ``text`` in order; none empty, none over the token limit."""
        chunks: list[str] = []
        for piece in self.splitter.split_text(text):
            piece = piece.strip()
            if not piece:
                continue
            if self.count(piece) <= self.chunk_tokens:
                chunks.append(piece)
            else:
                chunks.extend(self._cut_by_tokens(piece))
        return chunks

    def _cut_by_tokens(self, text: str) -> list[str]:
        offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        out = []
        step = self.chunk_tokens
        while offsets:
            window, offsets = offsets[:step], offsets[step:]
            piece = text[window[0][0] : window[-1][1]].strip()
            if piece and self.count(piece) > self.chunk_tokens:
                # Re-tokenising a slice can add a token at its edge: give the last token to the next window.
                offsets = window[-1:] + offsets
                piece = text[window[0][0] : window[-2][1]].strip()
            if piece:
                out.append(piece)
        return out
