"""A cross-encoder (bge-reranker-v2-m3 and its kind) through FlagEmbedding's ``FlagReranker``."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
from transformers.utils import logging as transformers_logging

from rag.config import RerankerSettings
from rag.encoder.base import BatchCallback, padded_inputs, plan_batches
from rag.encoder.model_source import RERANKER, resolve_model_dir, unloadable
from rag.encoder.runtime import device_for, quantize_int8
from rag.rerank.base import Reranker, RerankScore

os.environ.setdefault("TQDM_DISABLE", "1")  # FlagEmbedding's own bars would tear the Rich progress display


class FlagCrossEncoder(Reranker):
    """Scores (query, passage) pairs with ``FlagReranker``'s tokenizer and model.

    Scores equal ``FlagReranker.compute_score`` (the logit) and ``compute_score(normalize=True)`` (its sigmoid)
    for the same pairs and ``max_length``: pairs are built by FlagEmbedding's own rule (the query cut to 3/4 of
    ``max_length``, then the passage cut to fit). The loop is ours so that pairs are sorted by length and each
    forward pass is filled up to ``batch_tokens`` padded tokens, as the encoder does, without a probe pass.
    With ``quantize: int8`` the model's Linear layers run as dynamic int8 on the CPU (the encoder's helper).
    """

    def __init__(self, settings: RerankerSettings) -> None:
        super().__init__()
        from FlagEmbedding import FlagReranker

        self.model_dir = resolve_model_dir(settings, RERANKER)
        self.quantize = settings.quantize
        self.device = device_for(settings, "retrieval.reranker")
        self.fp16 = settings.fp16 and self.device.startswith("cuda")
        self.batch_size = settings.batch_size
        self.batch_tokens = settings.batch_tokens
        self.max_length = settings.max_length
        self.query_max_length = settings.max_length * 3 // 4
        self.model_name = settings.model
        logging.getLogger("transformers").setLevel(logging.ERROR)
        transformers_logging.disable_progress_bar()
        try:
            self.flag_model = FlagReranker(str(self.model_dir), use_fp16=self.fp16, devices=self.device,
                                           batch_size=self.batch_size, max_length=self.max_length)
        except Exception as exc:  # OSError, ValueError, safetensors' and torch's errors on damaged files
            raise unloadable(self.model_dir, exc, RERANKER) from exc
        self.tokenizer = self.flag_model.tokenizer
        self.module = self.flag_model.model
        if self.fp16:
            self.module.half()
        else:
            self.module.float()
        self.module.to(self.device).eval()
        if self.quantize == "int8":
            quantize_int8(self.module, "retrieval.reranker.quantize")

    def _pairs(self, query: str, passages: Sequence[str]) -> list[dict[str, list[int]]]:
        """Token ids of each (query, passage) pair, cut as ``FlagReranker.compute_score`` cuts them."""
        from FlagEmbedding.utils.tokenizer_compat import prepare_for_model_compat

        q_ids = self.tokenizer([query], add_special_tokens=False, max_length=self.query_max_length,
                               truncation=True)["input_ids"][0]
        p_ids = self.tokenizer(list(passages), add_special_tokens=False, max_length=self.max_length,
                               truncation=True)["input_ids"]
        return [prepare_for_model_compat(self.tokenizer, q_ids, ids, truncation="only_second",
                                         max_length=self.max_length, padding=False) for ids in p_ids]

    @torch.inference_mode()
    def score(
        self, query: str, passages: Sequence[str], *, on_batch: BatchCallback | None = None
    ) -> list[RerankScore]:
        if not passages:
            return []
        pairs = self._pairs(query, passages)
        logits = [0.0] * len(pairs)
        for idx in plan_batches([len(p["input_ids"]) for p in pairs], self.batch_size, self.batch_tokens):
            types = [pairs[i]["token_type_ids"] for i in idx] if "token_type_ids" in pairs[0] else None
            arrays = padded_inputs(self.tokenizer, [pairs[i]["input_ids"] for i in idx], types)
            batch = {key: torch.from_numpy(value).to(self.device) for key, value in arrays.items()}
            out = self.module(**batch, return_dict=True).logits.view(-1).float().cpu().tolist()
            for i, value in zip(idx, out, strict=True):
                logits[i] = value
            self.pairs_scored += len(idx)
            if on_batch is not None:
                on_batch(len(idx), sum(len(pairs[i]["input_ids"]) for i in idx))
        return [RerankScore.of(value) for value in logits]
