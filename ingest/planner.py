"""Plan one file: read its bytes, recognise it unchanged, or parse and chunk it into the documents to encode.

Everything here is the CPU work that comes before the encoder. It needs no encoder, store or GPU, only what
:class:`PlannerSpec` carries, so it runs the same in the ingest process and in a worker process
(``ingest.workers``); a :class:`FileOutcome` is what either gives back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ingest.bookkeeping import file_unchanged, is_complete
from ingest.chunker import WINDOW_CHARS, TokenChunker
from ingest.discovery import FoundFile, display_path
from ingest.readers import OcrOptions, ReaderOptions, read_file
from ingest.readers.base import ReadError, SourceDocument
from ingest.readers.sections import one_line
from ingest.readers.tables import chunk_section
from rag.store import StoredDocument
from rag.store.schema import MAX_PATH, MAX_TEXT


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def doc_id_for(source: str, key: str | None) -> str:
    return source if key is None else f"{source}#{key}"


class PlanningProgress(Protocol):
    """The progress events planning emits (a part of ingest.report.ProgressListener)."""

    def chunking(self, source: str, done_chars: int, total_chars: int) -> None: ...

    def ocr(self, source: str, done_pages: int, total_pages: int) -> None: ...

    def reading(self, source: str, done_pages: int, total_pages: int) -> None: ...


@dataclass
class PlannedDocument:
    """A document that needs (re)encoding: its chunk texts and per-chunk metadata."""

    doc_id: str
    title: str
    texts: list[str]
    metadata: list[dict[str, Any]]
    previous: StoredDocument | None
    dense: list[list[float]] = field(default_factory=list)
    sparse: list[dict[int, float]] = field(default_factory=list)


@dataclass
class PlannedFile:
    """A changed file: documents to write, documents to keep, and stale documents to delete."""

    found: FoundFile
    source: str
    file_hash: str
    to_write: list[PlannedDocument]
    to_refresh: list[tuple[StoredDocument, dict[str, Any]]]
    stale_doc_ids: list[str]
    kept: int


@dataclass
class FileOutcome:
    """What planning one file found: it could not be opened (``unreadable``: prune keeps its documents), it is
    ``unchanged``, it ``failed`` to parse or chunk (``reason``), or it is ``planned`` (``plan``)."""

    kind: Literal["unreadable", "unchanged", "failed", "planned"]
    reason: str = ""
    plan: PlannedFile | None = None
    file_hash: str = ""  # the sha256 of the file's bytes, when they were read (or known: FoundFile.known_hash)


@dataclass(frozen=True)
class PlannerSpec:
    """Everything that shapes a file's plan; small and picklable, so a worker process can rebuild the planner."""

    tokenizer_json: str  # the embedding model's tokenizer (tokenizers' JSON)
    chunk_tokens: int
    overlap_tokens: int
    reader_options: ReaderOptions
    ocr_options: OcrOptions
    pipeline_id: str


def check_file(found: FoundFile, stored: list[StoredDocument], pipeline_id: str) -> tuple[FileOutcome | None, str]:
    """The quick part of planning: the hash of the file's bytes, and its outcome if it cannot be read or is
    unchanged (else None: it must be parsed and chunked). A file the file hash cache recognised (``known_hash``)
    and found unchanged is not read."""
    if found.known_hash is not None and file_unchanged(stored, found.known_hash, pipeline_id):
        return FileOutcome("unchanged", file_hash=found.known_hash), found.known_hash
    try:
        data = found.path.read_bytes()
    except OSError as exc:
        return FileOutcome("unreadable", exc.strerror or str(exc)), ""
    file_hash = sha256(data)
    unchanged = file_unchanged(stored, file_hash, pipeline_id)
    return (FileOutcome("unchanged", file_hash=file_hash) if unchanged else None), file_hash


class FilePlanner:
    """Turns a found file and its stored documents into a :class:`FileOutcome`."""

    def __init__(self, spec: PlannerSpec) -> None:
        self.spec = spec
        self.chunker = TokenChunker(spec.tokenizer_json, spec.chunk_tokens, spec.overlap_tokens)

    def plan(
        self, found: FoundFile, source: str, stored: list[StoredDocument], progress: PlanningProgress
    ) -> FileOutcome:
        outcome, file_hash = check_file(found, stored, self.spec.pipeline_id)
        return outcome or self.plan_changed(found, source, file_hash, stored, progress)

    def plan_changed(
        self, found: FoundFile, source: str, file_hash: str, stored: list[StoredDocument],
        progress: PlanningProgress,
    ) -> FileOutcome:
        """Parse and chunk a file that :func:`check_file` found changed (or new)."""
        try:
            plan = self._plan_file(found, source, file_hash, stored, progress)
            return FileOutcome("planned", plan=plan, file_hash=file_hash)
        except ReadError as exc:
            return FileOutcome("failed", str(exc), file_hash=file_hash)
        except Exception as exc:  # a reader library choking on a strange file must not end the whole run
            reason = f"could not be read ({type(exc).__name__}: {one_line(exc)})"
            return FileOutcome("failed", reason, file_hash=file_hash)

    def _plan_file(
        self, found: FoundFile, source: str, file_hash: str, stored: list[StoredDocument],
        progress: PlanningProgress,
    ) -> PlannedFile:
        spec = self.spec
        documents = read_file(found.path, spec.reader_options, spec.ocr_options,
                              lambda done, total: progress.ocr(source, done, total),
                              lambda done, total: progress.reading(source, done, total))
        stored_by_id = {d.doc_id: d for d in stored}
        to_write: list[PlannedDocument] = []
        to_refresh: list[tuple[StoredDocument, dict[str, Any]]] = []
        new_ids: set[str] = set()
        for doc in documents:
            doc_id = doc_id_for(source, doc.key)
            if len(doc_id) > MAX_PATH:  # milvus-lite counts characters
                raise ReadError(f"path too long for a document id ({len(doc_id)} characters, at most {MAX_PATH})")
            if doc_id in new_ids:
                raise ReadError(f"two documents share the id {doc_id!r}")
            new_ids.add(doc_id)
            content_hash = sha256(doc.content)
            base = {
                "content_hash": content_hash, "file_hash": file_hash, "file_docs": len(documents),
                "pipeline": spec.pipeline_id, "root": found.root_text, "mtime": found.mtime,
                "size": found.size, **doc.metadata,
            }
            if doc.key is not None:
                base["key"] = doc.key
            if found.fs_path is not None:
                base["fs_path"] = found.fs_path
            previous = stored_by_id.get(doc_id)
            if previous is not None and is_complete(previous, content_hash, spec.pipeline_id):
                to_refresh.append((previous, base))
                continue
            to_write.append(self._chunk_document(doc_id, doc, base, previous, source, progress))
        stale = [doc_id for doc_id in stored_by_id if doc_id not in new_ids]
        return PlannedFile(found, source, file_hash, to_write, to_refresh, stale, kept=len(to_refresh))

    def _chunk_document(
        self, doc_id: str, doc: SourceDocument, base: dict[str, Any], previous: StoredDocument | None,
        source: str, progress: PlanningProgress,
    ) -> PlannedDocument:
        texts: list[str] = []
        section_meta: list[dict[str, Any]] = []
        total = sum(len(section.text) for section in doc.sections)
        done = 0

        def chunked(chars: int, _section_chars: int) -> None:
            progress.chunking(source, done + chars, total)

        on_progress = chunked if total > WINDOW_CHARS else None  # only text that takes a while reports
        for section in doc.sections:
            for text in chunk_section(section, self.chunker, on_progress):  # a table: whole rows, header repeated
                if len(text.encode("utf-8")) > MAX_TEXT:
                    raise ReadError(f"a chunk of {doc_id} is over {MAX_TEXT} bytes; lower chunking.chunk_tokens")
                texts.append(text)
                section_meta.append(section.metadata)
            done += len(section.text)
        if not texts:
            raise ReadError("no text left after chunking")
        metadata = [{**base, **meta, "chunk_count": len(texts)} for meta in section_meta]
        return PlannedDocument(doc_id, display_path(doc.title), texts, metadata, previous)
