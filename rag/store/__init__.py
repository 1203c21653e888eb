"""The Milvus store: knowledge bases as collections of chunks with dense and sparse vectors."""

from rag.store.client import MilvusStore, is_server_uri
from rag.store.knowledge_base import KnowledgeBase, StoredDocument
from rag.store.model_info import ModelInfo
from rag.store.schema import ChunkRecord

__all__ = ["ChunkRecord", "KnowledgeBase", "MilvusStore", "ModelInfo", "StoredDocument", "is_server_uri"]
