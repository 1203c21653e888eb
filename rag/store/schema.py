"""The collection layout of a knowledge base: one row per chunk with its dense and sparse vectors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymilvus import CollectionSchema, DataType, MilvusClient

from rag.encoder.base import SparseVector

MAX_TEXT = 65535
MAX_PATH = 2048
MAX_TITLE = 1024

# Collection properties that record which model built the vectors.
PROP_MODEL = "ragscope.model"
PROP_FINGERPRINT = "ragscope.model_fingerprint"
PROP_DIM = "ragscope.dim"
PROP_SCHEMA = "ragscope.schema_version"
PROP_WRITE_STAMP = "ragscope.write_stamp"  # replaced by every write (rag.store.exact_search)
SCHEMA_VERSION = "1"

SCALAR_FIELDS = ["id", "doc_id", "source", "chunk_index", "text", "title", "metadata"]

# Milvus rejects a sparse vector without a nonzero weight, but a text can have none (e.g. only punctuation).
# Such a chunk is stored with this one placeholder entry: a token id no tokenizer produces, so it never matches
# a query token and adds nothing to any lexical score. ``decode_sparse`` removes it when reading.
EMPTY_SPARSE_TOKEN = 4_294_967_294
EMPTY_SPARSE_WEIGHT = 1e-30


def encode_sparse(sparse: SparseVector) -> SparseVector:
    """The sparse vector as written to Milvus (the placeholder stands in for an empty one)."""
    return sparse if sparse else {EMPTY_SPARSE_TOKEN: EMPTY_SPARSE_WEIGHT}


def decode_sparse(stored: dict[Any, Any]) -> SparseVector:
    """A sparse vector read from Milvus: int token ids, float weights, the placeholder removed."""
    return {int(k): float(v) for k, v in stored.items() if int(k) != EMPTY_SPARSE_TOKEN}


@dataclass
class ChunkRecord:
    """One chunk as stored. ``id`` is derived from the document, its content hash and the chunk index.

    ``metadata`` is the writer's, stored and returned as given (JSON). The retriever shows page, heading and
    file_type where present; rag-ingest's bookkeeping keys are described in ``ingest.bookkeeping``.
    """

    id: str
    doc_id: str
    source: str
    chunk_index: int
    text: str
    title: str
    metadata: dict[str, Any]
    dense: list[float]
    sparse: SparseVector = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id, "doc_id": self.doc_id, "source": self.source, "chunk_index": self.chunk_index,
            "text": self.text, "title": self.title[:MAX_TITLE], "metadata": self.metadata,
            "dense": self.dense, "sparse": encode_sparse(self.sparse),
        }


def build_schema(dim: int) -> CollectionSchema:
    """Fields of a knowledge-base collection for a model with ``dim`` dense dimensions."""
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=MAX_PATH)
    schema.add_field("source", DataType.VARCHAR, max_length=MAX_PATH)
    schema.add_field("chunk_index", DataType.INT64)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT)
    schema.add_field("title", DataType.VARCHAR, max_length=MAX_TITLE)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    return schema


def build_index_params(client: MilvusClient) -> Any:
    """Inner-product indexes: dense vectors are normalised (IP = cosine); sparse IP = lexical score."""
    params = client.prepare_index_params()
    params.add_index("dense", index_type="AUTOINDEX", metric_type="IP")
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    return params
