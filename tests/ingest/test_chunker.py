"""TokenChunker with the tiny bge-m3-format tokenizer: limits, order, langchain's boundaries, huge paragraphs."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.chunker import SEPARATORS, WINDOW_CHARS, TokenChunker
from rag.encoder import Encoder
from rag.testing.sentences import training_sentences
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


def mixed_sections(count: int, seed: int = 0) -> list[str]:
    """Sections of Chinese, English and mixed paragraphs and lines, some longer than a chunk; a few long lines
    without spaces (Chinese runs, words run together) that must be cut on clauses or tokens."""
    rng = random.Random(seed)
    sentences = training_sentences()
    chinese = [s for s in sentences if any("\u4e00" <= c <= "\u9fff" for c in s)]
    english = [s for s in sentences if s not in chinese]
    sections = []
    for i in range(count):
        paragraphs = []
        for _ in range(rng.randint(1, 6)):
            pool = rng.choice([chinese, english, sentences])
            joiner = rng.choice(["", "\n"]) if pool is chinese else rng.choice([" ", "\n"])
            paragraphs.append(joiner.join(rng.choice(pool) for _ in range(rng.choice([1, 3, 8, 40, 90]))))
        if i % 10 == 0:
            paragraphs.append("".join(rng.choice(chinese).rstrip("。！？；") for _ in range(120)))
        if i % 10 == 5:
            paragraphs.append("".join(w.capitalize() for w in rng.choices(WORDS, k=900)))
        sections.append("\n\n".join(paragraphs))
    return sections


def assert_chunks_cover(text: str, chunks: list[str]) -> None:
    """Each chunk ends after the previous one and leaves no text out between them. Text repeats in these
    sections, so a chunk is looked for from about where the previous one starts (a chunk after a piece cut on
    tokens can start a little before it), not anywhere."""
    start, position = 0, 0
    for chunk in chunks:
        found = text.find(chunk, max(0, start - len(chunk)))
        while found != -1 and found + len(chunk) <= position:
            found = text.find(chunk, found + 1)
        assert found != -1, chunk[:60]
        assert not text[position:found].strip(), f"text left out before {chunk[:60]!r}"
        start, position = found, found + len(chunk)
    assert not text[position:].strip()


def overlap(previous: str, chunk: str) -> str:
    """The longest end of ``previous`` that ``chunk`` starts with."""
    for size in range(min(len(previous), len(chunk)), 0, -1):
        if chunk.startswith(previous[-size:]):
            return previous[-size:]
    return ""


def test_chunks_equal_the_landed_chunkers_and_follow_its_rules(chunker: TokenChunker, encoder: Encoder) -> None:
    """Counting words from a cache gives every piece the count that tokenising it gives, so the chunks are the
    landed chunker's (which tokenised every piece): within the limit, overlapping, no text lost."""
    landed = TokenChunker(encoder.tokenizer, 96, 16)
    landed.counter.by_words = False  # tokenise every piece, as the landed chunker did
    assert chunker.counter.by_words
    overlaps = 0
    sizes: list[int] = []
    for text in mixed_sections(60):
        chunks = chunker.split(text)
        assert chunks == landed.split(text)
        assert_chunks_cover(text, chunks)
        assert all(len(encoder.tokenizer.tokenize(c)) <= 96 for c in chunks)  # the model's tokenizer agrees
        for previous, chunk in itertools.pairwise(chunks):
            shared = overlap(previous, chunk).strip()
            sizes.append(len(encoder.tokenizer.tokenize(shared)) if shared else 0)
            overlaps += bool(shared)
    assert overlaps > 50  # consecutive chunks of long paragraphs do share text
    # The overlap is overlap_tokens as langchain's merge adds up its pieces' counts; the shared text counted as
    # one string (or a repeated sentence that happens to match) can come out a few tokens over.
    assert max(sizes) <= 2 * 16 and sum(size <= 16 for size in sizes) >= 0.95 * len(sizes)


def test_each_distinct_word_is_tokenised_once(chunker: TokenChunker) -> None:
    """Linear and cheap: the tokenizer sees each distinct word of an English text once (the landed chunker
    tokenised every piece at every level of the splitter and every chunk again, about 3x the text)."""
    text = "\n\n".join(one_line(3000, seed=s, sentence_words=s) for s in range(4, 40))
    seen: list[str] = []
    backend = chunker.counter.backend

    class Spy:
        def encode(self, word: str, **kwargs: Any) -> Any:
            seen.append(word)
            return backend.encode(word, **kwargs)

        def encode_batch(self, words: list[str], **kwargs: Any) -> Any:
            seen.extend(words)
            return backend.encode_batch(words, **kwargs)

    counter = TokenChunker(chunker.tokenizer, 96, 16).counter
    counter.backend = Spy()  # type: ignore[assignment]
    fresh = TokenChunker(chunker.tokenizer, 96, 16)
    fresh.counter = counter
    chunks = fresh.split(text)
    assert len(chunks) > 100 and len(seen) == len(set(seen)) == len(set(text.split()))
