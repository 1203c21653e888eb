"""Ingest files into a knowledge base: read, chunk, encode, write; incremental, idempotent and crash-safe.

Crash safety comes from the write order. A document's chunk ids derive from its doc id, content hash and
chunk index; every chunk records the document's content hash and chunk count. New chunks are upserted
first and the previous version's chunks deleted after, so at any instant a document is either complete
(all chunks 0..n-1 with one hash) or visibly incomplete, and the next run redoes exactly the incomplete
ones. Unchanged files are recognised by their bytes' hash before they are parsed or encoded, a hash the file hash
cache (ingest.file_hashes) knows without reading the file when its stat is as recorded.

Document ids: a file's id is its path relative to the folder given (``source``), as it always was, unless
that id already belongs to another real file (same relative path under another folder that still exists,
in this run or stored before); then it is the file's absolute path. A stored document keeps its id when
the same real file (``root`` + ``source``) is seen again, so knowledge bases written before this rule
keep working unchanged: nothing is migrated, re-encoded or duplicated.

Files go through in groups (at least 32 files, 256 on a GPU, more while they fit in about 10 s of encoding:
ingest.grouping; or ``ingest.documents_per_batch`` files): each group's files are planned (read, parsed,
chunked: ingest.planner; in worker processes a group ahead with ``ingest.workers``, ingest.workers), its chunks
encoded in one call, then written (ingest.writes) and reported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.bookkeeping import FILE_FIELDS
from ingest.chunker import CHUNKER_VERSION
from ingest.discovery import FileFinder, FoundFile
from ingest.file_hashes import FileHashCache, cache_path
from ingest.grouping import CPU_FIRST_GROUP, GPU_FIRST_GROUP, GroupSizer
from ingest.planner import PlannedFile, PlannerSpec, sha256
from ingest.readers import OcrOptions, ReaderOptions
from ingest.readers.ocr import describe_ocr
from ingest.report import FileResult, IngestReport, ProgressListener, SilentProgress
from ingest.workers import GroupPlan, GroupPlanner
from ingest.writes import WriteQueue
from rag.config import Settings
from rag.encoder import Encoder
from rag.errors import ConfigError
from rag.store import ChunkRecord, KnowledgeBase, MilvusStore, ModelInfo, StoredDocument

LOOKUP_FILES = 1024  # files whose stored documents are read in one batched look-up (a few queries)
# A run over at least one file per this many stored chunks reads every stored document once, up front, instead
# of looking files up in batches: a batched look-up scans the whole collection per query anyway (milvus-lite).
# Not past SCAN_MAX_CHUNKS stored chunks, whose metadata would all be held in memory at once.
SCAN_CHUNKS_PER_FILE = 8
SCAN_MAX_CHUNKS = 200_000


def chunk_id(doc_id: str, content_hash: str, pipeline: str, index: int) -> str:
    return sha256(f"{doc_id}\0{content_hash}\0{pipeline}\0{index}")


@dataclass
class RunState:
    """What one run carries from group to group."""

    report: IngestReport
    progress: ProgressListener
    collection: KnowledgeBase | None
    dry_run: bool
    writes: WriteQueue
    sizer: GroupSizer
    seen: set[str] = field(default_factory=set)
    claimed: dict[str, str] = field(default_factory=dict)


class IngestPipeline:
    """Runs ingest for one settings object with a loaded encoder and an open Milvus store."""

    def __init__(
        self, settings: Settings, encoder: Encoder, store: MilvusStore, *, background_writes: bool = False,
        data_dir: str | Path | None = None,
    ) -> None:
        """``data_dir`` (pass ``settings.app.data_dir``): where the file hash cache lives (ingest.file_hashes), used
        with ``ingest.file_hash_cache``; without it every file is read and hashed."""
        self.settings = settings
        # Write each group to Milvus while the next one is read, chunked and encoded (see ingest.writes). Off by
        # default: with embedded milvus-lite it was not measured faster (benchmarks/ingest_speed.py).
        self.background_writes = background_writes
        self.encoder = encoder
        self.store = store
        if settings.chunking.chunk_tokens + 2 > encoder.max_length and not settings.chunking.truncate:
            raise ConfigError(
                f"chunking.chunk_tokens ({settings.chunking.chunk_tokens}) + 2 special tokens is more than the "
                f"embedding model reads ({encoder.max_length} tokens): chunks would be cut silently. Set "
                f"chunking.chunk_tokens to at most {encoder.max_length - 2} (RAG_CHUNKING__CHUNK_TOKENS)."
            )
        self.model = ModelInfo.of(encoder)
        ing = settings.ingest
        self.reader_options = ReaderOptions(ing.text_field, ing.title_field, ing.id_field, ing.title_in_text)
        self.ocr_options = OcrOptions(ing.ocr, ing.ocr_max_pages)
        # Everything that shapes a chunk's text or vectors: a change re-encodes the documents it touches.
        self.pipeline_id = sha256(
            f"{self.model.fingerprint}:{settings.chunking.chunk_tokens}:{settings.chunking.overlap_tokens}:"
            f"{CHUNKER_VERSION}:{self.reader_options}" + ("" if ing.ocr == "auto" else f":ocr={ing.ocr}")
        )[:16]  # ocr: auto (the default) adds nothing, so ids from before OCR existed stay as they were
        self.planner_spec = PlannerSpec(
            encoder.tokenizer.backend_tokenizer.to_str(), settings.chunking.chunk_tokens,
            settings.chunking.overlap_tokens, self.reader_options, self.ocr_options, self.pipeline_id,
        )
        self.file_hashes = (
            FileHashCache(cache_path(data_dir)) if data_dir is not None and ing.file_hash_cache else None
        )
        self.planner = GroupPlanner(self.planner_spec, ing.workers, ing.file_timeout_s)  # workers start now, if any

    def group_sizer(self) -> GroupSizer:
        """Files per group: ``ingest.documents_per_batch``, or sized by encoding time (ingest.grouping)."""
        fixed = self.settings.ingest.documents_per_batch
        if fixed:
            return GroupSizer(fixed, max_files=fixed, fixed=True)
        first = GPU_FIRST_GROUP if str(self.encoder.device).startswith("cuda") else CPU_FIRST_GROUP
        return GroupSizer(first, max_files=LOOKUP_FILES)  # a group never spans two look-up windows anyway

    def close(self) -> None:
        """Stop the worker processes (``ingest.workers``), if any, and close the file hash cache; the pipeline can
        still run, reading in process and hashing every file."""
        self.planner.close()
        if self.file_hashes is not None:
            self.file_hashes.close()

    def __enter__(self) -> IngestPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        paths: Sequence[str | Path],
        *,
        kb: str | None = None,
        prune: bool = False,
        dry_run: bool = False,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        progress: ProgressListener | None = None,
    ) -> IngestReport:
        """Ingest ``paths`` (files or folders) into knowledge base ``kb``; see IngestReport for the result."""
        started = time.perf_counter()
        progress = progress or SilentProgress()
        name = kb or self.settings.kb.name
        ing = self.settings.ingest
        finder = FileFinder(
            include if include is not None else ing.include,
            [*ing.exclude, *(exclude or [])],
            ing.max_file_mb,
        )
        discovery = finder.find(paths)
        report = IngestReport(kb=name, dry_run=dry_run, ignored_files=discovery.ignored)
        progress.started(len(discovery.files) + len(discovery.failed))
        for failed in discovery.failed:
            self._fail(report, progress, FileResult(failed.source, "failed", reason=failed.reason))

        collection = None
        exact_budget = self.settings.retrieval.exact_max_chunks
        if not dry_run or self.store.exists(name):
            collection = self.store.open(name, self.model, create=not dry_run)
            if not dry_run:  # writes then patch the exact index, and a snapshot of it is left (rag.store.exact_search)
                collection.hold_exact(exact_budget)
        unreadable = [str(f.path) for f in discovery.failed if f.path is not None]
        sizer = self.group_sizer()
        window = sizer.first * max(1, LOOKUP_FILES // sizer.first) if sizer.fixed else LOOKUP_FILES
        planner = self.planner
        with WriteQueue(background=self.background_writes and not dry_run) as writes:
            state = RunState(report, progress, collection, dry_run, writes, sizer)
            # Into an empty knowledge base nothing is looked up: only sources this run claims get rows, and
            # those are read again (see _identify).
            stored_chunks = collection.count() if collection is not None else 0
            known = collection if stored_chunks > 0 else None
            everything = None
            if known is not None and stored_chunks <= min(SCAN_MAX_CHUNKS, SCAN_CHUNKS_PER_FILE * len(discovery.files)):
                everything = self._lookup(known, None, exact_budget)
            pending: GroupPlan | None = None  # planned in the workers while the group before it is encoded
            for window_start in range(0, len(discovery.files), window):
                files = discovery.files[window_start : window_start + window]
                if self.file_hashes is not None:
                    files = self.file_hashes.recognise(files)
                wanted = [s for f in files for s in (f.source, f.full_source)]
                if everything is not None:
                    stored = {s: everything[s] for s in wanted if s in everything}
                else:
                    stored = self._lookup(known, wanted)
                start = 0
                while start < len(files):
                    group = files[start : start + sizer.take(files[start:])]
                    start += len(group)
                    if any(s in state.claimed for f in group for s in (f.source, f.full_source)):
                        # _identify reads these sources again: what earlier groups write must land first
                        if pending is not None:
                            unreadable += self._finish_group(pending, state)
                            pending = None
                        writes.settle()
                    plan = planner.submit(self._identify(group, stored, collection, state.claimed))
                    if pending is not None:
                        unreadable += self._finish_group(pending, state)
                    pending = plan
                    if not planner.ahead:
                        unreadable += self._finish_group(pending, state)
                        pending = None
            if pending is not None:
                unreadable += self._finish_group(pending, state)
            writes.settle()
        seen = state.seen
        if collection is not None and not dry_run:
            # Seal what was written: milvus-lite reads unflushed rows one by one in Python on every query (the
            # next run's look-ups, searches), sealed ones in bulk; a Milvus server indexes sealed segments.
            collection.flush()
        if prune and collection is not None:
            self._prune(collection, report, progress, seen, unreadable, dry_run)
            if report.pruned and not dry_run:
                collection.flush()
        if prune and not dry_run and self.file_hashes is not None:
            self.file_hashes.forget_gone(discovery.folders, discovery.files)  # what was deleted is not asked again
        if collection is not None and not dry_run:
            collection.save_exact()  # once, after every write of the run (a snapshot of 100k chunks takes seconds)
        report.total_seconds = time.perf_counter() - started
        return report

    # -- one group of files -------------------------------------------------------------------------

    def _finish_group(self, plan: GroupPlan, state: RunState) -> list[str]:
        """Wait for a group's plan; report its unchanged and failed files, encode the rest and hand their writes
        over; returns the paths of files that could not be read (prune keeps their documents)."""
        report, progress, collection, seen = state.report, state.progress, state.collection, state.seen
        unreadable: list[str] = []
        planned: list[PlannedFile] = []
        planned_bytes = 0
        hashed: list[tuple[FoundFile, str]] = []
        for (found, source, stored), outcome in self.planner.outcomes(plan, progress):
            if outcome.file_hash and outcome.file_hash != found.known_hash:
                hashed.append((found, outcome.file_hash))
            if outcome.kind == "unreadable":
                unreadable.append(str(found.absolute))
                self._fail(report, progress, FileResult(source, "failed", reason=outcome.reason))
            elif outcome.kind == "failed":
                self._fail(report, progress, FileResult(source, "failed", reason=outcome.reason))
            elif outcome.kind == "unchanged":
                if found.known_hash is not None:
                    report.recognised_files += 1
                seen.update(d.doc_id for d in stored)
                result = FileResult(source, "unchanged", len(stored), sum(d.chunks for d in stored))
                report.count("unchanged", len(stored))
                report.files.append(result)
                progress.file_done(result)
            elif outcome.plan is not None:
                changed = outcome.plan
                seen.update(d.doc_id for d in changed.to_write)
                seen.update(d.doc_id for d, _ in changed.to_refresh)
                seen.update(d.doc_id for d in stored if d.doc_id not in changed.stale_doc_ids)
                planned.append(changed)
                planned_bytes += found.size if changed.to_write else 0
        if self.file_hashes is not None:
            self.file_hashes.record(hashed)

        documents = [d for plan in planned for d in plan.to_write]
        texts = [t for d in documents for t in d.texts]
        if texts and not state.dry_run:
            self.encoder.prepare()  # a deferred model loads now, before its first group (rag.encoder.deferred)
        progress.chunks_planned(len(texts))
        if texts and not state.dry_run:
            encode_started, passed_before = time.perf_counter(), self.encoder.texts_encoded
            encoded = self.encoder.encode(texts, on_batch=progress.encoded)
            encode_seconds = time.perf_counter() - encode_started
            report.encode_seconds += encode_seconds
            # The rate that sizes later groups is the model's: texts answered by the encoding cache cost almost
            # nothing, and counting them would make the next groups far too long for what the model then has to do.
            through_model = (self.encoder.texts_encoded - passed_before) / len(texts)
            state.sizer.record(round(planned_bytes * through_model), encode_seconds)
            report.texts_encoded += len(texts)
            report.tokens_encoded += sum(encoded.token_counts)
            offset = 0
            for doc in documents:
                n = len(doc.texts)
                doc.dense = encoded.dense[offset : offset + n].tolist()
                doc.sparse = encoded.sparse[offset : offset + n]
                offset += n

        def write() -> None:
            if not state.dry_run and collection is not None:
                self._write_group(planned, collection, report)

        def done() -> None:
            for plan in planned:
                self._report_file(plan, report, progress)

        state.writes.submit(write, done)
        return unreadable

    @staticmethod
    def _lookup(
        collection: KnowledgeBase | None, sources: list[str] | None, exact_max_chunks: int = 0
    ) -> dict[str, list[StoredDocument]]:
        """The stored documents from ``sources`` (all of them: None, from the exact index when it is held), by
        source, in a few batched queries."""
        stored_by_source: dict[str, list[StoredDocument]] = {}
        if collection is not None and (sources is None or sources):
            for doc in collection.documents(sources=sources, exact_max_chunks=exact_max_chunks).values():
                stored_by_source.setdefault(doc.source, []).append(doc)
        return stored_by_source

    @classmethod
    def _identify(
        cls, group: list[FoundFile], stored_before: dict[str, list[StoredDocument]],
        collection: KnowledgeBase | None, claimed: dict[str, str],
    ) -> list[tuple[FoundFile, str, list[StoredDocument]]]:
        """Each file's source (document id base) and its stored documents; see the module docstring.

        ``claimed`` maps the sources given out in this run to their folder (``root``), across groups.
        ``stored_before`` was read before this run wrote anything to the sources it looks up (only claimed
        sources are written); those already claimed are read again, so a file sees what earlier groups wrote.
        """
        wanted = {s for f in group for s in (f.source, f.full_source)}
        stored_by_source = {s: docs for s, docs in stored_before.items() if s in wanted and s not in claimed}
        stored_by_source.update(cls._lookup(collection, sorted(s for s in wanted if s in claimed)))
        out = []
        for found in group:
            root = found.root_text
            by_relative = stored_by_source.get(found.source, [])
            mine = [d for d in by_relative if _stored_root(d) in (root, "")]
            others = [d for d in by_relative if d not in mine and os.path.lexists(_stored_path(d))]
            free = claimed.get(found.source, root) == root  # no other folder's file took it in this run
            if not mine and not others and free and not stored_by_source.get(found.full_source):
                mine = by_relative  # its folder was moved (the old path is gone): the document follows the file
            if mine or (not others and free and not stored_by_source.get(found.full_source)):
                source = found.source
            else:
                source, mine = found.full_source, stored_by_source.get(found.full_source, [])
            claimed[source] = root
            out.append((found, source, mine))
        return out

    # -- writing ------------------------------------------------------------------------------------

    def _write_group(self, planned: list[PlannedFile], collection: KnowledgeBase, report: IngestReport) -> None:
        """Write a group's files in the crash-safe order: every new chunk (a few large upserts), then the old
        versions' chunks are deleted, unchanged documents refreshed and documents gone from their file deleted."""
        records = [
            ChunkRecord(
                id=chunk_id(doc.doc_id, meta["content_hash"], self.pipeline_id, i), doc_id=doc.doc_id,
                source=plan.source, chunk_index=i, text=text, title=doc.title, metadata=meta,
                dense=doc.dense[i], sparse=doc.sparse[i],
            )
            for plan in planned
            for doc in plan.to_write
            for i, (text, meta) in enumerate(zip(doc.texts, doc.metadata, strict=True))
        ]
        if records:
            report.chunks_written += collection.upsert(records)
        new_ids = {r.id for r in records}
        old = [cid for plan in planned for doc in plan.to_write if doc.previous is not None
               for cid in doc.previous.chunk_ids if cid not in new_ids]
        if old:
            collection.delete_ids(old)
            report.chunks_deleted += len(old)
        for plan in planned:
            for previous, base in plan.to_refresh:
                self._refresh(collection, previous, base)
        stale = [doc_id for plan in planned for doc_id in plan.stale_doc_ids]
        if stale:
            collection.delete_documents(stale)

    @staticmethod
    def _report_file(plan: PlannedFile, report: IngestReport, progress: ProgressListener) -> None:
        added = sum(1 for d in plan.to_write if d.previous is None)
        updated = len(plan.to_write) - added + len(plan.stale_doc_ids)
        chunks = sum(len(d.texts) for d in plan.to_write)
        report.count("added", added)
        report.count("updated", updated)
        report.count("unchanged", plan.kept)
        outcome = "added" if added and not updated else "updated" if added or updated else "unchanged"
        ocr = describe_ocr(meta for doc in plan.to_write for meta in doc.metadata)
        result = FileResult(plan.source, outcome, added + updated + plan.kept, chunks, ocr=ocr)
        report.files.append(result)
        progress.file_done(result)

    def _refresh(self, collection: KnowledgeBase, previous: StoredDocument, base: dict[str, Any]) -> None:
        """Rewrite an unchanged document's file-level metadata, reusing its stored vectors (no encoding)."""
        rows = collection.chunks(previous.doc_id, vectors=True)
        if all(r["metadata"].get("file_hash") == base["file_hash"] and
               r["metadata"].get("file_docs") == base["file_docs"] for r in rows):
            return
        records = [
            ChunkRecord(
                id=r["id"], doc_id=r["doc_id"], source=r["source"], chunk_index=r["chunk_index"], text=r["text"],
                title=r["title"], metadata={**r["metadata"], **{k: base[k] for k in FILE_FIELDS if k in base}},
                dense=list(r["dense"]), sparse=r["sparse"],
            )
            for r in rows
        ]
        collection.upsert(records)

    def _prune(
        self,
        collection: KnowledgeBase,
        report: IngestReport,
        progress: ProgressListener,
        seen: set[str],
        unreadable: list[str],
        dry_run: bool,
    ) -> None:
        """Delete documents whose file is gone; never one under a file or folder that could not be read."""
        gone: dict[str, list[str]] = {}
        for doc in collection.documents(exact_max_chunks=self.settings.retrieval.exact_max_chunks).values():
            if doc.doc_id in seen:
                continue
            path = _stored_path(doc)
            if any(path == u or path.startswith(u.rstrip(os.sep) + os.sep) for u in unreadable):
                continue
            if not _stored_root(doc) or not os.path.lexists(path):
                gone.setdefault(doc.source, []).append(doc.doc_id)
        for source, doc_ids in sorted(gone.items()):
            if not dry_run:
                collection.delete_documents(doc_ids)
            report.count("pruned", len(doc_ids))
            result = FileResult(source, "pruned", len(doc_ids))
            report.files.append(result)
            progress.file_done(result)

    @staticmethod
    def _fail(report: IngestReport, progress: ProgressListener, result: FileResult) -> None:
        report.failed.append(result)
        report.files.append(result)
        progress.file_done(result)


def _stored_root(doc: StoredDocument) -> str:
    return str(doc.metadata[0].get("root", "")) if doc.metadata else ""


def _stored_path(doc: StoredDocument) -> str:
    """The file a stored document came from: ``root``/``source`` (an absolute source stands alone)."""
    fs_path = doc.metadata[0].get("fs_path") if doc.metadata else None
    if isinstance(fs_path, str):
        return os.fsdecode(bytes.fromhex(fs_path))
    return os.path.join(_stored_root(doc), doc.source)
