"""Build a seeded model in bge-reranker-v2-m3's exact on-disk format, offline.

The folder holds what ``BAAI/bge-reranker-v2-m3`` holds: an ``XLMRobertaForSequenceClassification``
``config.json`` (one label: the relevance logit) + ``model.safetensors`` and the tokenizer files, so
FlagEmbedding's ``FlagReranker`` loads it through the code path users run. The tokenizer is trained and
written exactly as for the tiny bge-m3 (:mod:`rag.testing.tiny_bge_m3`). The tiny variant is for tests
(fast, meaningless scores); ``full_size=True`` has the real architecture with random weights, for speed
measurements only.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

from rag.testing.sentences import training_sentences
from rag.testing.tiny_bge_m3 import (
    train_tokenizer,
    write_tokenizer_files,
    xlm_roberta_config,
)


def reranker_config(vocab_size: int, *, full_size: bool = False, max_length: int = 8192) -> XLMRobertaConfig:
    """bge-reranker-v2-m3's ``config.json`` (full size: its real dimensions) or the tiny variant's, one label."""
    return xlm_roberta_config(vocab_size, full_size=full_size, max_length=max_length, num_labels=1,
                              architectures=["XLMRobertaForSequenceClassification"])


def build_bge_reranker_like(
    out_dir: str | Path,
    *,
    seed: int = 0,
    full_size: bool = False,
    extra_texts: Iterable[str] = (),
    max_length: int = 8192,
) -> Path:
    """Write a bge-reranker-v2-m3-format model to ``out_dir`` and return the path.

    ``extra_texts`` are added to the tokenizer's training sentences, so that their characters are in the
    vocabulary (as for :func:`rag.testing.tiny_bge_m3.build_bge_m3_like`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer([*training_sentences(), *extra_texts])
    write_tokenizer_files(tokenizer, out, max_length)

    torch.manual_seed(seed)
    config = reranker_config(tokenizer.get_vocab_size(), full_size=full_size, max_length=max_length)
    model = XLMRobertaForSequenceClassification(config)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    return out
