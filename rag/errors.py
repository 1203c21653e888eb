"""Errors whose message is meant for the user: one paragraph that says what is wrong and what to do."""

from __future__ import annotations


class RagError(Exception):
    """Base class; the CLI prints the message without a traceback."""


class ConfigError(RagError):
    """A settings file or value is invalid."""


class ModelNotAvailableError(RagError):
    """The embedding model cannot be found locally or downloaded."""


class ModelMismatchError(RagError):
    """A collection was built with another embedding model or dimension."""


class StoreLockedError(RagError):
    """The embedded Milvus data directory is held by another process."""


class StoreUnavailableError(RagError):
    """The Milvus server cannot be reached or the collection cannot be used."""


class KnowledgeBaseNotFoundError(RagError):
    """A command names a knowledge base that does not exist."""


class InvalidInputError(RagError):
    """A query, text or option given by the user cannot be used as it is (e.g. empty text)."""
