"""rag.encoder.deferred: a bge-m3 encoder described from its folder, its model loaded on the first encode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.config import EmbeddingSettings
from rag.encoder import CachedEncoder, Encoder, load_encoder
from rag.encoder.deferred import DeferredEncoder
from rag.errors import ModelNotAvailableError

TEXTS = ["年假有多少天？", "Employees may work remotely three days a week.", "混合 mixed 文本 text"]


def pipeline_of(tokenizer: Any) -> dict[str, Any]:
    """The tokenizer's Rust pipeline, without the truncation and padding transformers sets on it per call."""
    config: dict[str, Any] = json.loads(tokenizer.backend_tokenizer.to_str())
    return {key: value for key, value in config.items() if key not in {"truncation", "padding"}}


def settings_of(model: Path, **changes: object) -> EmbeddingSettings:
    return EmbeddingSettings(model=str(model), device="cpu", batch_size=8, max_length=512, **changes)


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_it_describes_the_model_as_the_loaded_encoder_does_and_loads_it_on_the_first_encode(
    tiny_model_dir: Path, quantize: str
) -> None:
    settings = settings_of(tiny_model_dir, quantize=quantize)
    heard: list[str] = []
    deferred = DeferredEncoder(settings, lambda: load_encoder(settings), lambda: heard.append("loading"))
    assert not deferred.loaded and heard == []
    loaded = load_encoder(settings)
    described = ("backend", "model_name", "fingerprint", "dim", "max_length", "quantize", "device",
                 "supports_sparse", "supports_colbert")
    assert {a: getattr(deferred, a) for a in described} == {a: getattr(loaded, a) for a in described}
    assert pipeline_of(deferred.tokenizer) == pipeline_of(loaded.tokenizer)
    assert deferred.count_tokens(TEXTS[2]) == loaded.count_tokens(TEXTS[2])
    assert not deferred.loaded

    out, reference = deferred.encode(TEXTS), loaded.encode(TEXTS)
    assert deferred.loaded and heard == ["loading"] and deferred.texts_encoded == len(TEXTS)
    np.testing.assert_array_equal(out.dense, reference.dense)
    assert out.sparse == reference.sparse and out.token_counts == reference.token_counts
    deferred.encode(TEXTS[:1])
    assert heard == ["loading"] and deferred.texts_encoded == len(TEXTS) + 1  # loaded once


def test_load_encoder_defers_only_a_model_not_yet_loaded(tiny_model_dir: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh-model"
    shutil.copytree(tiny_model_dir, fresh)
    deferred = load_encoder(settings_of(fresh), data_dir=tmp_path / "data", deferred=True)
    assert isinstance(deferred, CachedEncoder) and isinstance(deferred.inner, DeferredEncoder)
    deferred.prepare()  # what the ingest pipeline calls before it times its first encode
    assert deferred.inner.loaded
    loaded: Encoder = load_encoder(settings_of(tiny_model_dir))
    assert load_encoder(settings_of(tiny_model_dir), deferred=True) is loaded  # already in memory: used as it is


def test_an_incomplete_folder_fails_at_once_and_damaged_weights_on_the_first_encode(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(tiny_model_dir, partial)
    (partial / "sparse_linear.pt").unlink()
    with pytest.raises(ModelNotAvailableError, match=r"incomplete.*sparse_linear\.pt"):
        DeferredEncoder(settings_of(partial), lambda: load_encoder(settings_of(partial)))

    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_model_dir, damaged)
    (damaged / "model.safetensors").write_bytes(b"not weights")
    deferred = DeferredEncoder(settings_of(damaged), lambda: load_encoder(settings_of(damaged)))
    assert deferred.dim == 32  # described from its config and tokenizer alone
    with pytest.raises(ModelNotAvailableError, match="could not be loaded"):
        deferred.encode(TEXTS)
