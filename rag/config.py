"""Settings: defaults < configs/default.yaml < --config FILE < RAG_<SECTION>__<KEY> environment variables."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, ValidationError, model_serializer, model_validator
from pydantic.functional_validators import BeforeValidator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from rag.errors import ConfigError, InvalidInputError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "default.yaml"
CONFIG_ENV = "RAG_CONFIG"


class EmbeddingSettings(BaseModel):
    """Which embedding model to load (bge-m3 or a sentence-transformers model) and how to run it."""

    backend: Literal["bge-m3", "sentence-transformers"] = "bge-m3"
    model: str = "BAAI/bge-m3"
    hub: Literal["huggingface", "modelscope"] = "huggingface"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    fp16: bool = True
    batch_size: int = Field(16, ge=1)
    batch_tokens: int = Field(4096, ge=0)
    max_length: int = Field(8192, ge=16)
    download: bool = True
    quantize: Literal["none", "int8"] = "none"
    cache: bool = True


class MilvusSettings(BaseModel):
    """Where the vectors live: a local path (embedded milvus-lite) or http://host:port (a server)."""

    uri: str = "./data/milvus.db"
    token: str = ""
    db_name: str = ""


class ChunkingSettings(BaseModel):
    """Token-based chunking with the model's own tokenizer."""

    chunk_tokens: int = Field(512, ge=16)
    overlap_tokens: int = Field(64, ge=0)
    truncate: bool = False

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSettings:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                f"overlap_tokens ({self.overlap_tokens}) must be smaller than chunk_tokens ({self.chunk_tokens})"
            )
        return self


KB_NAME_RULE = "use letters, digits and underscores (at most 255), starting with a letter or underscore"


class KBSettings(BaseModel):
    """Knowledge-base defaults."""

    name: str = Field("default", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$", description=KB_NAME_RULE)


class IngestSettings(BaseModel):
    """File discovery and limits for rag-ingest."""

    max_file_mb: float = Field(50.0, gt=0)
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=lambda: [".*", "**/.*", "**/__pycache__/**"])
    # Files per group (encoded together, then written crash-safely); None: sized by encoding time (ingest.grouping).
    documents_per_batch: int | None = Field(None, ge=1)
    # Processes that parse and chunk the next group's changed files while this one is encoded (0: in this process).
    workers: int = Field(0, ge=0)
    # A worker silent on one file this long (no PDF page read or OCR'd, no window chunked) is stopped; it fails.
    # 0: no limit. In the ingest process itself (workers 0) a reader cannot be stopped safely: no limit there.
    file_timeout_s: float = Field(1800.0, ge=0)
    # Recognise a file unchanged by its size, times and inode as recorded with its hash (ingest.file_hashes).
    file_hash_cache: bool = True
    text_field: str | None = None
    title_field: str | None = None
    id_field: str | None = None
    title_in_text: bool = False
    ocr: Literal["auto", "always", "never"] = "auto"  # PDF pages without a usable text layer, and images
    ocr_max_pages: int = Field(200, ge=0)


DEFAULT_RERANK_WEIGHT = 1.0


class WeightSettings(BaseModel):
    """Weights of the hybrid score: hybrid = sum(w_i * s_i) / sum(w_i) over the scores computed.

    ``rerank`` (the cross-encoder's normalised score) is written out only when set; unset it weighs
    :data:`DEFAULT_RERANK_WEIGHT`, so weights read before cross-encoder reranking existed stay as they were.
    """

    dense: float = Field(1.0, ge=0)
    sparse: float = Field(0.3, ge=0)
    colbert: float = Field(1.0, ge=0)
    rerank: float | None = Field(None, ge=0)

    @model_serializer(mode="wrap")
    def _rerank_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("rerank") is None:
            data.pop("rerank", None)
        return data


class RerankerSettings(BaseModel):
    """The cross-encoder of ``retrieval.rerank: cross-encoder``; where it comes from as for the embedding model."""

    model: str = "BAAI/bge-reranker-v2-m3"
    hub: Literal["huggingface", "modelscope"] = "huggingface"
    download: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"
    fp16: bool = True
    batch_size: int = Field(16, ge=1)
    batch_tokens: int = Field(8192, ge=0)
    max_length: int = Field(512, ge=16)
    quantize: Literal["none", "int8"] = "none"


class SearchParamSettings(BaseModel):
    """Milvus search parameters per vector field, passed to every Milvus search (embedded and server).

    ``dense``: for the HNSW index Milvus builds (AUTOINDEX), ``ef``, the candidates it explores; it is raised to
    the number of results asked for when smaller (Milvus requires ef >= limit). ``sparse``: e.g.
    ``drop_ratio_search`` on a Milvus server; empty by default.
    """

    dense: dict[str, Any] = Field(default_factory=lambda: {"ef": 4096})  # benchmarks/exact_search.py: recall 1.0
    sparse: dict[str, Any] = Field(default_factory=dict)


Mode = Literal["dense", "sparse", "hybrid"]
"""Which searches supply candidates and which score orders them (see rag.retrieval.fusion)."""
Fusion = Literal["weighted", "rrf"]
"""How hybrid mode fuses dense and sparse: a weighted mean of the scores, or reciprocal rank fusion."""
Rerank = Literal["none", "colbert", "cross-encoder"]
"""What reorders the best ``rerank_candidates``: nothing, bge-m3's ColBERT vectors, or a cross-encoder."""
MODES: tuple[Mode, ...] = get_args(Mode)
FUSIONS: tuple[Fusion, ...] = get_args(Fusion)
RERANKS: tuple[Rerank, ...] = get_args(Rerank)


MILVUS_MAX_LIMIT = 16384  # the most results one Milvus search or query returns (topk, offset + limit)


class RetrievalSettings(BaseModel):
    """How a query finds and scores chunks; see configs/default.yaml for what each score means."""

    mode: Mode = "hybrid"
    fusion: Fusion = "weighted"
    top_k: int = Field(5, ge=1, le=MILVUS_MAX_LIMIT)  # rag eval asks for 2 x Recall@k's largest k
    candidate_factor: int = Field(4, ge=1, le=100)
    weights: WeightSettings = WeightSettings()
    rerank: Rerank = "none"
    rerank_candidates: int = Field(20, ge=1, le=1000)
    reranker: RerankerSettings = RerankerSettings()
    rrf_k: int = Field(60, ge=1)
    min_score: float = 0.0
    exact_max_chunks: int = Field(200_000, ge=0)  # embedded KBs up to this size are searched exactly in-process
    search_params: SearchParamSettings = SearchParamSettings()

    @model_validator(mode="before")
    @classmethod
    def _colbert_rerank_is_a_rerank(cls, data: Any) -> Any:
        """The older key ``colbert_rerank: true/false`` sets ``rerank``: true -> colbert, false -> not colbert."""
        if not isinstance(data, dict) or "colbert_rerank" not in data:
            return data
        data = dict(data)
        if _truthy(data.pop("colbert_rerank")):
            data["rerank"] = "colbert"
        elif data.get("rerank") == "colbert":
            data["rerank"] = "none"
        return data

    @property
    def colbert_rerank(self) -> bool:
        """Whether ColBERT reranks (``rerank: colbert``); the older setting's name, still accepted as input."""
        return self.rerank == "colbert"

    @property
    def cross_encoder_rerank(self) -> bool:
        """Whether the cross-encoder (``retrieval.reranker``) reranks."""
        return self.rerank == "cross-encoder"

    @property
    def candidate_limit(self) -> int:
        """How many chunks each search (dense, sparse) fetches: top_k x candidate_factor, at most Milvus' limit."""
        return min(self.top_k * self.candidate_factor, MILVUS_MAX_LIMIT)


def _truthy(value: Any) -> bool:
    """A boolean setting given as a bool or as text (environment variables: true/false, 1/0, yes/no, on/off)."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on", "y", "t"}
    return bool(value)


class LevelSettings(BaseModel):
    """Dense-similarity levels shown to users: >= very_similar, >= related, else unrelated."""

    very_similar: float = Field(0.85, ge=0, le=1)
    related: float = Field(0.60, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> LevelSettings:
        if self.related > self.very_similar:
            raise ValueError(f"related ({self.related}) must not exceed very_similar ({self.very_similar})")
        return self


class LLMSettings(BaseModel):
    """The local Ollama model that answers from the retrieved chunks."""

    base_url: str = "http://127.0.0.1:11434"
    model: str = "qwen2.5:3b"
    temperature: float = Field(0.1, ge=0, le=2)
    num_ctx: int = Field(8192, ge=512)
    timeout_s: float = Field(120.0, gt=0)
    reasoning: bool = False
    history_turns: int = Field(4, ge=0, le=50)
    history_chars: int = Field(2000, ge=0)


class AppSettings(BaseModel):
    """Where the app keeps its own files (relevance judgments, uploads, caches)."""

    data_dir: str = "./data"
    language: Literal["zh", "en"] = "en"
    max_upload_mb: float = Field(50.0, gt=0)


def _key_list(value: Any) -> Any:
    """API keys given as one text: a JSON list, or keys separated by commas."""
    if isinstance(value, str) and value.strip().startswith("["):
        return json.loads(value)
    if isinstance(value, str):
        return [key.strip() for key in value.split(",") if key.strip()]
    return value


class ApiSettings(BaseModel):
    """The HTTP API of `rag serve`: where it listens, the keys it accepts, and its request limits.

    ``keys``: accepted API keys (``Authorization: Bearer KEY``); a list, or one text with keys separated by
    commas (``RAG_API__KEYS=key1,key2``) or a JSON list. Required whenever ``host`` is not a loopback address.
    ``default_kb``: the knowledge base of a chat whose ``model`` names none (default: ``kb.name``).
    """

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    keys: Annotated[list[str], NoDecode, BeforeValidator(_key_list)] = Field(default_factory=list)
    default_kb: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,254}$", description=KB_NAME_RULE)
    max_request_kb: int = Field(1024, ge=1)
    max_top_k: int = Field(100, ge=1, le=MILVUS_MAX_LIMIT)


class Settings(BaseSettings):
    """All settings; see configs/default.yaml for the meaning of each key."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_nested_delimiter="__", extra="forbid")

    embedding: EmbeddingSettings = EmbeddingSettings()
    milvus: MilvusSettings = MilvusSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    kb: KBSettings = KBSettings()
    ingest: IngestSettings = IngestSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    levels: LevelSettings = LevelSettings()
    llm: LLMSettings = LLMSettings()
    app: AppSettings = AppSettings()
    api: ApiSettings = ApiSettings()

    @model_validator(mode="after")
    def _chunk_fits_model(self) -> Settings:
        if self.chunking.chunk_tokens + 2 > self.embedding.max_length and not self.chunking.truncate:
            raise ValueError(
                f"chunking.chunk_tokens ({self.chunking.chunk_tokens}) + 2 special tokens exceeds "
                f"embedding.max_length ({self.embedding.max_length}); chunks would be truncated"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment variables beat the YAML files, which arrive as init arguments.
        return env_settings, init_settings


class _GivenSettings(Settings):
    """Settings validated from the given data alone (no environment): how overrides are checked."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def read_config_file(path: Path) -> dict[str, Any]:
    """A YAML config file's sections; ConfigError when it is missing, not YAML, or not a mapping."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, not {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings from the default YAML, an optional extra YAML (or $RAG_CONFIG), env vars, overrides.

    ``overrides`` are section dicts (e.g. ``kb={"name": "docs"}``) and win over everything else.
    """
    data: dict[str, Any] = read_config_file(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() else {}
    extra = config_file or os.environ.get(CONFIG_ENV)
    if extra:
        data = _merge(data, read_config_file(Path(extra)))
    try:
        settings = Settings(**data)
        if overrides:  # validated by the same rules, then kept as a plain Settings (already valid)
            checked = _GivenSettings(**_merge(settings.model_dump(), overrides))
            settings = Settings.model_construct(**{name: getattr(checked, name) for name in Settings.model_fields})
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc)) from None
    return settings


ModelT = TypeVar("ModelT", bound=BaseModel)


def with_overrides(model: ModelT, **changes: Any) -> ModelT:
    """A copy of ``model`` with ``changes``, checked by the model's own rules; InvalidInputError says what is wrong.

    For per-call options (e.g. ``HybridRetriever.search(query, mode=...)``): the same validation as the config.
    """
    try:
        return type(model).model_validate({**model.model_dump(), **changes})
    except ValidationError as exc:
        raise InvalidInputError("; ".join(_problem(err) for err in exc.errors()) + ".") from None


def _problem(err: ErrorDetails) -> str:
    where = ".".join(str(part) for part in err["loc"]) or "value"
    if err["type"] == "literal_error":
        return f"{where} must be one of {err.get('ctx', {}).get('expected', '?')}, got {err['input']!r}"
    return f"{where}: {err['msg']}"


def _describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "settings"
        problems.append(f"{where}: {err['msg']}")
    return "invalid settings: " + "; ".join(problems)


def is_loopback(address: str) -> bool:
    """Whether only this machine can reach ``address`` (127.0.0.0/8, ::1, localhost): what `rag ui` and `rag serve`
    may bind to without a key."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
