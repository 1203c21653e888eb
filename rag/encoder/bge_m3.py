"""bge-m3 through FlagEmbedding's BGEM3FlagModel: dense + sparse (+ ColBERT) in one forward pass."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
from transformers.utils import logging as transformers_logging

from rag.config import EmbeddingSettings
from rag.encoder.base import BatchCallback, EncodedBatch, Encoder, SparseVector, padded_inputs, plan_batches
from rag.encoder.model_source import bge_m3_fingerprint, model_fingerprint, resolve_model_dir, unloadable
from rag.encoder.runtime import device_for, pick_device, quantize_int8

__all__ = ["BGEM3Encoder", "lexical_weights", "model_fingerprint", "pick_device"]

os.environ.setdefault("TQDM_DISABLE", "1")  # FlagEmbedding's own bars would tear the Rich progress display


def lexical_weights(weights: np.ndarray, input_ids: np.ndarray, unused_ids: np.ndarray) -> list[SparseVector]:
    """Per row of a batch, the max weight per token id, ``unused_ids`` (special tokens, padding) and zero
    weights dropped: FlagEmbedding's ``BGEM3FlagModel._process_token_weights``, on the whole batch at once.

    ``weights`` and ``input_ids`` are (texts, padded length) arrays; a dict's keys come in token-id order.
    """
    keep = (weights > 0) & ~np.isin(input_ids, unused_ids)
    rows, columns = np.nonzero(keep)  # row-major: the rows come in order
    width = int(input_ids.max(initial=0)) + 1
    if rows.size == 0:
        return [{} for _ in range(len(weights))]
    keys = rows * width + input_ids[rows, columns]
    order = np.argsort(keys, kind="stable")
    keys, kept = keys[order], weights[rows, columns][order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    best = np.maximum.reduceat(kept, starts)
    row_of, token_of = np.divmod(keys[starts], width)
    bounds = np.searchsorted(row_of, np.arange(len(weights) + 1)).tolist()
    tokens, values = token_of.tolist(), best.tolist()
    return [dict(zip(tokens[a:b], values[a:b], strict=True)) for a, b in itertools.pairwise(bounds)]


class BGEM3Encoder(Encoder):
    """Encodes with ``BGEM3FlagModel``'s model; batches are sorted by length to limit padding.

    Outputs equal ``BGEM3FlagModel.encode`` (dense, lexical_weights, colbert_vecs) for the same texts and
    ``max_length``; the loop is ours so that progress is reported per batch and no probe pass is run.
    With ``quantize: int8`` the transformer's Linear layers run as dynamic int8 on the CPU (fingerprint + "-int8").
    """

    backend = "bge-m3"
    supports_sparse = True
    supports_colbert = True

    def __init__(self, settings: EmbeddingSettings) -> None:
        super().__init__()
        from FlagEmbedding import BGEM3FlagModel

        self.model_dir = resolve_model_dir(settings)
        self.device = device_for(settings)
        self.fp16 = settings.fp16 and self.device.startswith("cuda")
        self.batch_size = settings.batch_size
        self.batch_tokens = settings.batch_tokens
        self.max_length = settings.max_length
        self.model_name = settings.model
        self.quantize = settings.quantize
        self.fingerprint = bge_m3_fingerprint(self.model_dir, self.quantize)
        logging.getLogger("transformers").setLevel(logging.ERROR)
        transformers_logging.disable_progress_bar()
        try:
            self.flag_model = BGEM3FlagModel(
                str(self.model_dir), use_fp16=self.fp16, devices=self.device,
                passage_max_length=self.max_length, query_max_length=self.max_length,
                batch_size=self.batch_size,
            )
        except Exception as exc:  # OSError, ValueError, safetensors' and torch's errors on damaged files
            raise unloadable(self.model_dir, exc) from exc
        self.tokenizer = self.flag_model.tokenizer
        self.module = self.flag_model.model
        if self.device == "cpu":
            self.module.float()
        self.module.to(self.device).eval()
        if self.quantize == "int8":
            quantize_int8(self.module.model)  # the transformer; the small sparse/ColBERT heads stay fp32
        self.dim = int(self.module.model.config.hidden_size)
        self._unused_ids = np.array(sorted({
            self.tokenizer.convert_tokens_to_ids(self.tokenizer.special_tokens_map[name])
            for name in ("cls_token", "eos_token", "pad_token", "unk_token")
            if name in self.tokenizer.special_tokens_map
        }), np.int64)

    @torch.inference_mode()
    def encode(
        self, texts: Sequence[str], *, colbert: bool = False, on_batch: BatchCallback | None = None
    ) -> EncodedBatch:
        n = len(texts)
        if n == 0:
            return EncodedBatch(np.zeros((0, self.dim), np.float32), [], [] if colbert else None, [])
        tokens = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        ids: list[list[int]] = tokens["input_ids"]
        dense = np.zeros((n, self.dim), np.float32)
        sparse: list[SparseVector] = [{} for _ in range(n)]
        colbert_vecs: list[np.ndarray] = [np.zeros((0, self.dim), np.float32) for _ in range(n)]
        for idx in plan_batches([len(x) for x in ids], self.batch_size, self.batch_tokens):
            arrays = padded_inputs(self.tokenizer, [ids[i] for i in idx])
            batch = {key: torch.from_numpy(value).to(self.device) for key, value in arrays.items()}
            out = self.module(batch, return_dense=True, return_sparse=True, return_colbert_vecs=colbert)
            dense[idx] = out["dense_vecs"].float().cpu().numpy()
            weights = out["sparse_vecs"].squeeze(-1).float().cpu().numpy()
            by_text = lexical_weights(weights, arrays["input_ids"], self._unused_ids)
            for i, weights_of_text in zip(idx, by_text, strict=True):
                sparse[i] = weights_of_text
            if colbert:
                vecs = out["colbert_vecs"].float().cpu().numpy()
                for row, i in enumerate(idx):
                    colbert_vecs[i] = vecs[row, : len(ids[i]) - 1]
            self.texts_encoded += len(idx)
            if on_batch is not None:
                on_batch(len(idx), sum(len(ids[i]) for i in idx))
        return EncodedBatch(dense, sparse, colbert_vecs if colbert else None, [len(x) for x in ids])
