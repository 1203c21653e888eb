"""What a knowledge base records about the embedding model that made its vectors."""

from __future__ import annotations

from dataclasses import dataclass

from rag.encoder.base import Encoder


@dataclass(frozen=True)
class ModelInfo:
    """What a collection records about the model that made its vectors."""

    name: str
    fingerprint: str
    dim: int

    @classmethod
    def of(cls, encoder: Encoder) -> ModelInfo:
        """What a collection filled by ``encoder`` records (and what opening it with ``encoder`` checks)."""
        return cls(encoder.model_name, encoder.fingerprint, encoder.dim)
