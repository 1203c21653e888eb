"""TokenChunker with the tiny bge-m3-format tokenizer: limits, order, langchain's boundaries, huge paragraphs."""

from __future__ import annotations

import random

import pytest
from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.chunker import SEPARATORS, WINDOW_CHARS, TokenChunker
from rag.encoder import Encoder
from tests.conftest import example_texts

WORDS = ["annual", "leave", "remote", "work", "policy", "employees", "days", "manager", "approval",
         "the", "of", "and", "to"]


def one_line(chars: int, seed: int = 0, sentence_words: int = 14) -> str:
    """A paragraph with no newline: sentences of known words, ``chars`` long."""
    rng = random.Random(seed)
    sentences: list[str] = []
    size = 0
    while size < chars:
        sentence = " ".join(rng.choice(WORDS) for _ in range(sentence_words)).capitalize() + ". "
        sentences.append(sentence)
        size += len(sentence)
    return "".join(sentences)[:chars]


@pytest.fixture(scope="module")
def chunker(encoder: Encoder) -> TokenChunker:
    return TokenChunker(encoder.tokenizer, 96, 16)


def assert_chunks_cover_in_order(text: str, chunks: list[str], chunker: TokenChunker) -> None:
    """Every chunk is within the limit and follows the previous one (overlapping it a little), no text left out."""
    position = 0
    for chunk in chunks:
        assert chunk and chunker.count(chunk) <= chunker.chunk_tokens
        found = text.find(chunk, max(0, position - 400))
        assert found != -1 and found + len(chunk) > position, chunk[:60]
        assert not text[position:found].strip(), f"text left out before {chunk[:60]!r}"
        position = found + len(chunk)
    assert position >= len(text.rstrip())


def test_item11_huge_one_line_paragraph_is_chunked_window_by_window_with_progress(chunker: TokenChunker) -> None:
    text = one_line(int(3.5 * WINDOW_CHARS))
    events: list[tuple[int, int]] = []
    chunks = chunker.split(text, on_progress=lambda done, total: events.append((done, total)))
    assert_chunks_cover_in_order(text, chunks, chunker)
    assert len(events) == 4 and all(total == len(text) for _, total in events)
    done = [d for d, _ in events]
    assert done == sorted(done) and done[-1] == len(text) and done[0] <= WINDOW_CHARS


def test_text_without_any_separator_is_cut_on_tokens(chunker: TokenChunker) -> None:
    text = "".join(f"{random.Random(i).choice(WORDS)}{i}" for i in range(30_000))  # ~300k characters, no space
    chunks = chunker.split(text)
    assert_chunks_cover_in_order(text, chunks, chunker)


def test_text_below_a_window_is_chunked_exactly_as_langchain_with_the_hf_tokenizer(
    chunker: TokenChunker, encoder: Encoder
) -> None:
    """Counting with the Rust backend and a cache changes no boundary of langchain's splitter."""
    reference = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        encoder.tokenizer, chunk_size=96, chunk_overlap=16, separators=SEPARATORS, keep_separator="end",
        strip_whitespace=True,
    )
    texts = [*example_texts(), one_line(20_000, seed=2), one_line(20_000, seed=3, sentence_words=200)]
    compared = 0
    for text in texts:
        assert len(text) <= WINDOW_CHARS
        expected = [p.strip() for p in reference.split_text(text) if p.strip()]
        if all(chunker.count(p) <= 96 for p in expected):  # else both cut the piece over the limit on tokens
            assert chunker.split(text) == expected
            compared += 1
    assert compared >= len(texts) - 2
