"""WordTokenCounter: the tokenizer's own count for any text, from cached word counts where the tokenizer allows."""

from __future__ import annotations

import random

import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from ingest.token_count import WordTokenCounter
from rag.encoder import Encoder
from rag.testing.sentences import training_sentences
from tests.conftest import example_texts

ODD_TEXTS = [
    "", "   ", "  leading and trailing  ", "tab\there and line\nbreak\r\nend", "ideographic\u3000space",
    "no\xa0break\u2009thin\u202fnarrow", "vertical\x0btab\x0cfeed\u2028line\u2029para\u205fmath",
    "file\x1cgroup\x1drecord\x1eunit\x1fseparators", "next\x85line",
    "combining e\u0301 and cafe\u0301", "\u0301 starts with a mark", "<mask> and <s> in text, a<mask>b",
    "emoji 😀 text", "ｆｕｌｌ　ｗｉｄｔｈ　ＡＢＣ１２３", "员工每年享有十五天带薪年假。" * 40, "x" * 3000,
    "mixed 中文English混合 text，标点！", "digits 0123456789 and symbols %$#@!",
]


def samples(seed: int = 0) -> list[str]:
    """Whole texts, odd ones, and random slices of the examples (pieces cut anywhere, as a splitter makes)."""
    rng = random.Random(seed)
    texts = [*example_texts(), *ODD_TEXTS]
    pieces = []
    for text in example_texts():
        for _ in range(150):
            start = rng.randrange(len(text))
            pieces.append(text[start : start + rng.choice([1, 5, 40, 300, 2000])])
    return [*texts, *pieces]


def assert_counts_equal(counter: WordTokenCounter, backend: Tokenizer) -> None:
    for text in samples():
        assert counter.count(text) == len(backend.encode(text, add_special_tokens=False).ids), repr(text[:80])
    for text in samples():  # again, from the cache
        assert counter.count(text) == len(backend.encode(text, add_special_tokens=False).ids), repr(text[:80])


def test_bge_m3_format_tokenizer_is_counted_by_words_exactly(encoder: Encoder) -> None:
    backend = Tokenizer.from_str(encoder.tokenizer.backend_tokenizer.to_str())
    counter = WordTokenCounter(backend)
    assert counter.by_words  # XLM-RoBERTa as transformers loads it: WhitespaceSplit, then Metaspace
    assert_counts_equal(counter, backend)


def test_bert_wordpiece_tokenizer_is_counted_by_words_exactly() -> None:
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=400, special_tokens=["[UNK]"])
    backend.train_from_iterator(training_sentences(), trainer)
    counter = WordTokenCounter(backend)
    assert counter.by_words
    assert_counts_equal(counter, backend)


@pytest.mark.parametrize("pre_tokenizer", [pre_tokenizers.ByteLevel(add_prefix_space=False),
                                           pre_tokenizers.Metaspace()])
def test_tokenizer_whose_words_keep_their_spaces_is_counted_piece_by_piece(pre_tokenizer: object) -> None:
    """Byte-level BPE keeps a word's leading space ("Ġword"), a lone Metaspace counts runs of spaces: a sum of
    word counts would be wrong, so such tokenizers are asked for every piece, as before."""
    backend = Tokenizer(models.BPE(unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizer
    backend.train_from_iterator(training_sentences(), trainers.BpeTrainer(vocab_size=400, special_tokens=["[UNK]"]))
    counter = WordTokenCounter(backend)
    assert not counter.by_words
    assert_counts_equal(counter, backend)
