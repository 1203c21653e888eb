"""Build a seeded model in bge-m3's exact on-disk format, offline.

The folder holds what ``BAAI/bge-m3`` holds: an XLM-RoBERTa ``config.json`` + ``model.safetensors``,
``tokenizer.json`` (+ ``tokenizer_config.json``, ``special_tokens_map.json``), ``colbert_linear.pt`` and
``sparse_linear.pt``, so FlagEmbedding's ``BGEM3FlagModel`` loads it through the code path users run.
The tiny variant is for tests (fast, meaningless vectors); ``full_size=True`` has bge-m3's real
architecture with random weights, for speed measurements only.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import XLMRobertaConfig, XLMRobertaModel

from rag.testing.sentences import training_sentences

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]
MAX_PIECE = 8
TINY_DIM = 32
FULL_SIZE = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096}
TINY_SIZE = {"hidden_size": TINY_DIM, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
# A wide initialisation spreads the tiny model's embeddings; with 0.02 every text gets cosine ~1.
TINY_INIT_RANGE = 0.5
BGE_M3_VOCAB_SIZE = 250002


def train_tokenizer(texts: Iterable[str], vocab_size: int = 3000) -> Tokenizer:
    """Train an XLM-RoBERTa style Unigram tokenizer (Metaspace, <s> $A </s>) on ``texts``, reproducibly.

    The trainer picks the same pieces on every run but its scores vary slightly between processes (hash
    order), which changes some segmentations; so the pieces are kept and scored again from their counts in
    ``texts``, giving the same tokenizer, token ids and hence vectors in every process.
    """
    texts = list(texts)
    trained = Tokenizer(models.Unigram())
    trained.normalizer = normalizers.NFKC()
    trained.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="<unk>", max_piece_length=MAX_PIECE
    )
    trained.train_from_iterator(texts, trainer=trainer)
    pieces = sorted(p for p, _ in json.loads(trained.to_str())["model"]["vocab"] if p not in SPECIAL_TOKENS)
    vocab = [(token, 0.0) for token in SPECIAL_TOKENS] + _scored(pieces, texts)

    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=SPECIAL_TOKENS.index("<unk>")))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.add_special_tokens([*SPECIAL_TOKENS, "<mask>"])
    bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    return tokenizer


def _scored(pieces: list[str], texts: list[str]) -> list[tuple[str, float]]:
    """Each piece with the log of its relative frequency as a substring of the words of ``texts``."""
    known = set(pieces)
    words = Counter("▁" + w for text in texts for w in unicodedata.normalize("NFKC", text).split())
    counts: Counter[str] = Counter()
    for word, n in words.items():
        for start in range(len(word)):
            for end in range(start + 1, min(len(word), start + MAX_PIECE) + 1):
                if word[start:end] in known:
                    counts[word[start:end]] += n
    total = sum(counts.values()) + len(pieces)
    return [(p, math.log((counts[p] + 1) / total)) for p in pieces]


def write_tokenizer_files(tokenizer: Tokenizer, out: Path, max_length: int) -> None:
    """Write the tokenizer files of a BAAI XLM-RoBERTa repo (tokenizer.json, special tokens, tokenizer config)."""
    tokenizer.save(str(out / "tokenizer.json"))
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
               "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    config = {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": max_length, **special}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def xlm_roberta_config(vocab_size: int, *, full_size: bool = False, max_length: int = 8192,
                       hidden_size: int = TINY_DIM, **extra: object) -> XLMRobertaConfig:
    """The XLM-RoBERTa ``config.json`` of bge-m3 and bge-reranker-v2-m3 (full size: their real dimensions and
    vocabulary) or of the tiny variant (``vocab_size`` and ``hidden_size``); ``extra`` adds keys (e.g. num_labels)."""
    return XLMRobertaConfig(
        vocab_size=BGE_M3_VOCAB_SIZE if full_size else vocab_size,
        max_position_embeddings=max_length + 2,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        layer_norm_eps=1e-5,
        initializer_range=0.02 if full_size else TINY_INIT_RANGE,
        **(FULL_SIZE if full_size else {**TINY_SIZE, "hidden_size": hidden_size}),
        **extra,
    )


def build_bge_m3_like(
    out_dir: str | Path,
    *,
    seed: int = 0,
    full_size: bool = False,
    extra_texts: Iterable[str] = (),
    max_length: int = 8192,
    hidden_size: int = TINY_DIM,
) -> Path:
    """Write a bge-m3-format model to ``out_dir`` and return the path.

    ``extra_texts`` are added to the tokenizer's training sentences (e.g. the documents a test ingests),
    so that their characters are in the vocabulary. ``hidden_size`` (tiny variant only) sets the dense dimension.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer([*training_sentences(), *extra_texts])
    write_tokenizer_files(tokenizer, out, max_length)

    torch.manual_seed(seed)
    config = xlm_roberta_config(tokenizer.get_vocab_size(), full_size=full_size, max_length=max_length,
                                hidden_size=hidden_size)
    model = XLMRobertaModel(config)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)

    hidden = config.hidden_size
    torch.save(torch.nn.Linear(hidden, hidden).state_dict(), out / "colbert_linear.pt")
    sparse_linear = torch.nn.Linear(hidden, 1)
    if not full_size:
        _centre_sparse_head(sparse_linear, model, tokenizer)
    torch.save(sparse_linear.state_dict(), out / "sparse_linear.pt")
    return out


@torch.inference_mode()
def _centre_sparse_head(head: torch.nn.Linear, model: XLMRobertaModel, tokenizer: Tokenizer) -> None:
    """Set the bias so that about 70% of the tokens of the training sentences get a positive weight.

    The random tiny model's token states share a large common direction, so with a random bias the ReLU'd
    sparse weights are often all 0 (no lexical signal at all); bge-m3 gives most content tokens a weight.
    """
    ids = [e.ids for e in tokenizer.encode_batch(training_sentences()[:64])]
    projections = [head(model(torch.tensor([row])).last_hidden_state[0]).squeeze(-1) for row in ids]
    head.bias.fill_(-float(torch.cat(projections).quantile(0.3)))
