"""Find the embedding model's files: a local directory, the hub cache, or a download (Hugging Face / ModelScope)."""

from __future__ import annotations

import os
from pathlib import Path

from rag.config import EmbeddingSettings
from rag.errors import ModelNotAvailableError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "sentencepiece.bpe.model")
HEAD_FILES = ("colbert_linear.pt", "sparse_linear.pt")


def how_to_get(model: str) -> str:
    """The instructions every 'model not available' message ends with."""
    return (
        "Get the model one of these ways and point the setting embedding.model at it (in your --config "
        "file or as RAG_EMBEDDING__MODEL=/path): (1) on a machine with internet, run "
        "`huggingface-cli download BAAI/bge-m3 --local-dir /models/bge-m3`, copy the folder here and set "
        "RAG_EMBEDDING__MODEL=/models/bge-m3; (2) from ModelScope, reachable in mainland China: "
        "`pip install 'ragscope[modelscope]'` and set embedding.hub: modelscope (RAG_EMBEDDING__HUB=modelscope), "
        "or `modelscope download --model BAAI/bge-m3 --local_dir /models/bge-m3`; (3) let it download "
        "from Hugging Face: network access, embedding.download: true, HF_HUB_OFFLINE unset (HF_ENDPOINT "
        f"selects a mirror). Currently embedding.model = {model!r}."
    )


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or (os.sep != "/" and os.sep in model)


def check_model_dir(path: Path, model: str) -> Path:
    """Raise ModelNotAvailableError unless ``path`` holds a complete bge-m3 style model."""
    if not path.is_dir():
        raise ModelNotAvailableError(f"Embedding model directory {path} is not a directory. " + how_to_get(model))
    missing = []
    if not (path / "config.json").exists():
        missing.append("config.json")
    if not any((path / name).exists() for name in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if not any((path / name).exists() for name in TOKENIZER_FILES):
        missing.append(" or ".join(TOKENIZER_FILES))
    missing += [name for name in HEAD_FILES if not (path / name).exists()]
    if missing:
        raise ModelNotAvailableError(
            f"Embedding model directory {path} is incomplete: missing {', '.join(missing)} (a full bge-m3 "
            "download has the sparse and ColBERT heads too; without them scores would be random). "
            + how_to_get(model)
        )
    return path


def _from_huggingface(repo_id: str, allow_download: bool) -> Path:
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as exc:
        if offline or not allow_download:
            why = "HF_HUB_OFFLINE is set" if offline else "embedding.download is false"
            raise ModelNotAvailableError(
                f"Embedding model {repo_id!r} is not in the Hugging Face cache and {why}, so it cannot be "
                "downloaded. " + how_to_get(repo_id)
            ) from exc
    try:
        return Path(snapshot_download(repo_id, ignore_patterns=["flax_model.msgpack", "rust_model.ot", "tf_model.h5",
                                                                 "onnx/*", "imgs/*"]))
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelNotAvailableError(
            f"Embedding model {repo_id!r} could not be downloaded from Hugging Face ({reason}). "
            + how_to_get(repo_id)
        ) from exc


def _from_modelscope(model_id: str, allow_download: bool) -> Path:
    try:
        from modelscope import snapshot_download
    except ImportError as exc:
        raise ModelNotAvailableError(
            "embedding.hub is modelscope but the ModelScope SDK is not installed: run "
            "`pip install 'ragscope[modelscope]'`. " + how_to_get(model_id)
        ) from exc
    if not allow_download:
        raise ModelNotAvailableError(
            f"Embedding model {model_id!r} must be downloaded from ModelScope but embedding.download is false. "
            + how_to_get(model_id)
        )
    try:
        return Path(snapshot_download(model_id))
    except Exception as exc:
        raise ModelNotAvailableError(
            f"Embedding model {model_id!r} could not be downloaded from ModelScope ({exc}). " + how_to_get(model_id)
        ) from exc


def resolve_model_dir(settings: EmbeddingSettings) -> Path:
    """Return a local directory with the model's files, downloading them if allowed."""
    model = settings.model
    local = Path(model).expanduser()
    if local.exists():
        return check_model_dir(local.resolve(), model)
    if _looks_like_path(model):
        raise ModelNotAvailableError(f"No embedding model at {local}: the path does not exist. " + how_to_get(model))
    if settings.hub == "modelscope":
        return check_model_dir(_from_modelscope(model, settings.download), model)
    return check_model_dir(_from_huggingface(model, settings.download), model)
