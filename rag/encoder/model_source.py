"""Find a model's files: a local directory, the hub cache, or a download (Hugging Face / ModelScope).

The embedding model (bge-m3) and the cross-encoder reranker follow the same rules and give the same
one-paragraph error; a :class:`ModelKind` says which setting, repository and files each needs.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rag.errors import ModelNotAvailableError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "sentencepiece.bpe.model")
HEAD_FILES = ("colbert_linear.pt", "sparse_linear.pt")


class SourceSettings(Protocol):
    """The settings a model is found by (``EmbeddingSettings``, ``RerankerSettings``)."""

    model: str
    hub: str
    download: bool


@dataclass(frozen=True)
class ModelKind:
    """What the messages name: ``label`` (Embedding model), ``setting`` (embedding), its environment prefix,
    the usual repository and the files a complete download has besides config, weights and tokenizer."""

    label: str
    setting: str
    repo: str
    extra_files: tuple[str, ...] = ()
    extra_why: str = ""

    @property
    def env(self) -> str:
        return "RAG_" + self.setting.upper().replace(".", "__") + "__"

    @property
    def folder(self) -> str:
        return "/models/" + self.repo.split("/")[-1]


EMBEDDING = ModelKind(
    "Embedding model", "embedding", "BAAI/bge-m3", HEAD_FILES,
    " (a full bge-m3 download has the sparse and ColBERT heads too; without them scores would be random)",
)
RERANKER = ModelKind("Reranker model", "retrieval.reranker", "BAAI/bge-reranker-v2-m3")


def model_fingerprint(model_dir: Path) -> str:
    """A short hash identifying bge-m3 weights (the sparse head and config), whatever path they are loaded from."""
    digest = hashlib.sha256()
    for name in ("config.json", "sparse_linear.pt"):
        digest.update((model_dir / name).read_bytes())
    return digest.hexdigest()[:16]


def bge_m3_fingerprint(model_dir: Path, quantize: str) -> str:
    """The fingerprint of a bge-m3 encoder (``Encoder.fingerprint``): an int8 model has its own."""
    return model_fingerprint(model_dir) + ("-int8" if quantize == "int8" else "")


def how_to_get(model: str, kind: ModelKind = EMBEDDING) -> str:
    """The instructions every 'model not available' message ends with."""
    s, env, repo, folder = kind.setting, kind.env, kind.repo, kind.folder
    return (
        f"Get the model one of these ways and point the setting {s}.model at it (in your --config "
        f"file or as {env}MODEL=/path): (1) on a machine with internet, run "
        f"`huggingface-cli download {repo} --local-dir {folder}`, copy the folder here and set "
        f"{env}MODEL={folder}; (2) from ModelScope, reachable in mainland China: "
        f"`pip install 'ragscope[modelscope]'` and set {s}.hub: modelscope ({env}HUB=modelscope), "
        f"or `modelscope download --model {repo} --local_dir {folder}`; (3) let it download "
        f"from Hugging Face: network access, {s}.download: true, HF_HUB_OFFLINE unset (HF_ENDPOINT "
        f"selects a mirror). Currently {s}.model = {model!r}."
    )


def unloadable(
    model_dir: Path, exc: Exception, kind: ModelKind = EMBEDDING, done: str = "loaded"
) -> ModelNotAvailableError:
    """The error of a complete-looking model folder whose files could not be ``done`` (loaded, read): damaged or
    partial files."""
    files = ", ".join(("config.json", "weights", "tokenizer", *kind.extra_files))
    return ModelNotAvailableError(
        f"{kind.label} at {model_dir} could not be {done} ({exc}). Check that the folder is a complete "
        f"{kind.repo.split('/')[-1]} download ({files})."
    )


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or (os.sep != "/" and os.sep in model)


def check_model_dir(path: Path, model: str, kind: ModelKind = EMBEDDING) -> Path:
    """Raise ModelNotAvailableError unless ``path`` holds a complete model of this kind."""
    if not path.is_dir():
        raise ModelNotAvailableError(f"{kind.label} directory {path} is not a directory. " + how_to_get(model, kind))
    missing = []
    if not (path / "config.json").exists():
        missing.append("config.json")
    if not any((path / name).exists() for name in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if not any((path / name).exists() for name in TOKENIZER_FILES):
        missing.append(" or ".join(TOKENIZER_FILES))
    missing += [name for name in kind.extra_files if not (path / name).exists()]
    if missing:
        raise ModelNotAvailableError(
            f"{kind.label} directory {path} is incomplete: missing {', '.join(missing)}{kind.extra_why}. "
            + how_to_get(model, kind)
        )
    return path


def _from_huggingface(repo_id: str, allow_download: bool, kind: ModelKind) -> Path:
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as exc:
        if offline or not allow_download:
            why = "HF_HUB_OFFLINE is set" if offline else f"{kind.setting}.download is false"
            raise ModelNotAvailableError(
                f"{kind.label} {repo_id!r} is not in the Hugging Face cache and {why}, so it cannot be "
                "downloaded. " + how_to_get(repo_id, kind)
            ) from exc
    try:
        return Path(snapshot_download(repo_id, ignore_patterns=["flax_model.msgpack", "rust_model.ot", "tf_model.h5",
                                                                 "onnx/*", "imgs/*"]))
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelNotAvailableError(
            f"{kind.label} {repo_id!r} could not be downloaded from Hugging Face ({reason}). "
            + how_to_get(repo_id, kind)
        ) from exc


def _from_modelscope(model_id: str, allow_download: bool, kind: ModelKind) -> Path:
    try:
        from modelscope import snapshot_download
    except ImportError as exc:
        raise ModelNotAvailableError(
            f"{kind.setting}.hub is modelscope but the ModelScope SDK is not installed: run "
            "`pip install 'ragscope[modelscope]'`. " + how_to_get(model_id, kind)
        ) from exc
    if not allow_download:
        raise ModelNotAvailableError(
            f"{kind.label} {model_id!r} must be downloaded from ModelScope but {kind.setting}.download is false. "
            + how_to_get(model_id, kind)
        )
    try:
        return Path(snapshot_download(model_id))
    except Exception as exc:
        raise ModelNotAvailableError(
            f"{kind.label} {model_id!r} could not be downloaded from ModelScope ({exc}). "
            + how_to_get(model_id, kind)
        ) from exc


def resolve_model_dir(settings: SourceSettings, kind: ModelKind = EMBEDDING) -> Path:
    """Return a local directory with the model's files, downloading them if allowed."""
    model = settings.model
    local = Path(model).expanduser()
    if local.exists():
        return check_model_dir(local.resolve(), model, kind)
    if _looks_like_path(model):
        raise ModelNotAvailableError(
            f"No {kind.label.lower()} at {local}: the path does not exist. " + how_to_get(model, kind)
        )
    if settings.hub == "modelscope":
        return check_model_dir(_from_modelscope(model, settings.download, kind), model, kind)
    return check_model_dir(_from_huggingface(model, settings.download, kind), model, kind)
