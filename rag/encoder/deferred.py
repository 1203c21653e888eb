"""A bge-m3 encoder that loads its model on its first ``encode``: an ingest with nothing to encode never loads it.

Everything an ingest needs before it encodes is read from the model's folder without loading the model: the
fingerprint (config and sparse head), the dimension (``hidden_size`` in config.json) and the tokenizer, the same
values ``BGEM3Encoder`` gives. So a re-ingest of an unchanged folder imports neither torch's model code nor
FlagEmbedding (seconds) and reads no weights (2.2 GB for bge-m3; an int8 model is quantised as it loads).
The model is loaded (``load``, shared per process) when the first text is encoded; ``on_load`` hears of it first.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from rag.config import EmbeddingSettings
from rag.encoder.base import BatchCallback, EncodedBatch, Encoder
from rag.encoder.model_source import bge_m3_fingerprint, resolve_model_dir, unloadable


class DeferredEncoder(Encoder):
    """Describes a bge-m3 model from its folder; ``encode`` loads it (``load``) the first time."""

    backend = "bge-m3"
    supports_sparse = True
    supports_colbert = True

    def __init__(
        self, settings: EmbeddingSettings, load: Callable[[], Encoder], on_load: Callable[[], None] | None = None
    ) -> None:
        """Raises ModelNotAvailableError as loading would when the folder is incomplete (or cannot be had)."""
        super().__init__()
        from transformers import AutoTokenizer

        self.settings = settings
        self.model_dir = resolve_model_dir(settings)  # checks the files are all there (or downloads them)
        self.model_name = settings.model
        self.max_length = settings.max_length
        self.quantize = settings.quantize
        try:
            self.fingerprint = bge_m3_fingerprint(self.model_dir, self.quantize)
            self.dim = int(json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))["hidden_size"])
            self.tokenizer: Any = AutoTokenizer.from_pretrained(str(self.model_dir))
        except (OSError, ValueError, KeyError) as exc:
            raise unloadable(self.model_dir, exc, done="read") from exc
        self._load = load
        self.on_load = on_load
        self._model: Encoder | None = None
        self._device: str | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded (by a first ``encode``)."""
        return self._model is not None

    @property  # type: ignore[override]
    def device(self) -> str:
        """Where the model runs (or will): ``embedding.device`` resolved, which asks torch when it is ``auto``."""
        if self._model is not None:
            return self._model.device
        if self._device is None:
            from rag.encoder.runtime import device_for

            self._device = device_for(self.settings)
        return self._device

    def prepare(self) -> None:
        self.model()

    def model(self) -> Encoder:
        """The loaded encoder, loading it now if need be."""
        with self._lock:
            if self._model is None:
                if self.on_load is not None:
                    self.on_load()
                self._model = self._load()
            return self._model

    def encode(
        self, texts: Sequence[str], *, colbert: bool = False, on_batch: BatchCallback | None = None
    ) -> EncodedBatch:
        return self._encode_with(self.model(), texts, colbert=colbert, on_batch=on_batch)
