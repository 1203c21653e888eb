"""Batched look-ups, group writes (inline or in the background) and the flush: the same rows, nothing rewritten."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ingest.pipeline as pipeline_module
from ingest import grouping
from ingest.pipeline import IngestPipeline
from rag.config import Settings
from rag.encoder import CachedEncoder, Encoder, EncodingCache
from rag.store import KnowledgeBase, MilvusStore
from tests.conftest import EXAMPLES


def ingest(settings: Settings, encoder: Encoder, paths: list[Path], *, background: bool = True, **kwargs: Any):
    with MilvusStore(settings.milvus) as store:
        return IngestPipeline(settings, encoder, store, background_writes=background).run(paths, **kwargs)


def rows(settings: Settings) -> dict[str, tuple[Any, ...]]:
    """Every stored chunk by id: document, source, index, text, metadata and vectors."""
    with MilvusStore(settings.milvus) as store:
        base = store.open(settings.kb.name)
        chunks = [row for doc_id in base.documents() for row in base.chunks(doc_id, vectors=True)]
    return {r["id"]: (r["doc_id"], r["source"], r["chunk_index"], r["text"], r["metadata"],
                      np.asarray(r["dense"], np.float32).tobytes(), r["sparse"]) for r in chunks}


@pytest.fixture
def write_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Calls of the knowledge base's writing methods (which still write)."""
    calls: Counter[str] = Counter()
    for name in ("upsert", "delete_ids", "delete_documents"):
        original = getattr(KnowledgeBase, name)

        def counted(self: KnowledgeBase, *args: Any, _name: str = name, _original: Any = original) -> Any:
            calls[_name] += 1
            return _original(self, *args)

        monkeypatch.setattr(KnowledgeBase, name, counted)
    return calls


def test_background_and_inline_writes_store_the_same_rows_and_a_rerun_writes_nothing(
    make_settings: Callable[..., Settings], encoder: Encoder, tmp_path: Path, write_calls: Counter[str]
) -> None:
    inline = make_settings(tmp_path / "inline", ingest={"documents_per_batch": 2})
    background = make_settings(tmp_path / "background", ingest={"documents_per_batch": 2})
    first = ingest(inline, encoder, [EXAMPLES], background=False)
    second = ingest(background, encoder, [EXAMPLES], background=True)
    assert first.ok and second.ok and first.chunks_written == second.chunks_written > 0
    assert sorted((f.source, f.outcome, f.chunks) for f in first.files) == sorted(
        (f.source, f.outcome, f.chunks) for f in second.files)
    stored = rows(inline)
    assert stored == rows(background)
    # Files are written a group at a time: far fewer upserts than documents (8 files, 15 documents).
    assert 0 < write_calls["upsert"] <= 2 * 4

    write_calls.clear()
    encoded = encoder.texts_encoded
    for settings in (inline, background):
        again = ingest(settings, encoder, [EXAMPLES])
        assert (again.added, again.updated, again.chunks_written) == (0, 0, 0) and again.unchanged == first.added
    assert encoder.texts_encoded == encoded and not write_calls
    assert rows(inline) == stored


@pytest.mark.parametrize("scan", [8, 0], ids=["one read of everything", "batched look-ups"])
def test_same_relative_path_across_groups_and_look_up_windows(
    make_settings: Callable[..., Settings], encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    scan: int,
) -> None:
    """A file whose relative path an earlier group claimed is looked up again after that group's writes landed
    (background writes are waited for), also when the look-up of its window was made before them; whether the run
    reads every stored document up front (few stored chunks per file) or looks files up in batches."""
    monkeypatch.setattr(pipeline_module, "LOOKUP_FILES", 2)
    monkeypatch.setattr(pipeline_module, "SCAN_CHUNKS_PER_FILE", scan)
    settings = make_settings(tmp_path, ingest={"documents_per_batch": 1})
    folders = []
    for name in ("A", "B", "C"):
        folder = tmp_path / name
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "readme.txt").write_text(f"Team {name} handbook: leave is fifteen days.", encoding="utf-8")
        (folder / f"only-{name}.txt").write_text(f"Only in {name}: remote work three days.", encoding="utf-8")
        folders.append(folder)
    report = ingest(settings, encoder, folders)
    assert report.ok and report.added == 6
    with MilvusStore(settings.milvus) as store:
        docs = store.open(settings.kb.name).documents()
    readmes = sorted(doc_id for doc_id in docs if doc_id.endswith("readme.txt"))
    assert readmes == sorted(["sub/readme.txt", *(f"{(tmp_path / n).resolve().as_posix()}/sub/readme.txt"
                                                  for n in ("B", "C"))])

    encoded = encoder.texts_encoded
    again = ingest(settings, encoder, folders)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 6) and encoder.texts_encoded == encoded

    shutil.rmtree(folders[2])
    pruned = ingest(settings, encoder, folders[:2], prune=True)
    assert pruned.pruned == 2 and pruned.unchanged == 4


def test_groups_start_at_32_files_on_a_cpu_then_take_about_ten_seconds_of_encoding(
    make_settings: Callable[..., Settings], encoder: Encoder, tmp_path: Path, write_calls: Counter[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ingest.documents_per_batch unset: a first group of 32 files (256 on a GPU), then as many files as the encoder
    gets through in GROUP_SECONDS at the rate it showed so far (never fewer), at most twice the group before: for
    the tiny model 64 files, then the last 4."""
    for i in range(100):
        (tmp_path / "data").mkdir(exist_ok=True)
        (tmp_path / "data" / f"note-{i:02d}.txt").write_text(f"Note {i}: the office opens at {i % 12 + 1}.", "utf-8")
    encoded: list[int] = []  # texts per encode call: one chunk per file, so files per group
    encode = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda texts, **kw: encoded.append(len(texts)) or encode(texts, **kw))
    settings = make_settings(tmp_path / "fast")
    assert settings.ingest.documents_per_batch is None and encoder.device == "cpu"
    report = ingest(settings, encoder, [tmp_path / "data"], background=False)
    assert report.added == 100 and encoded == [32, 64, 4] and write_calls["upsert"] == 3

    write_calls.clear()  # an encoder slower than GROUP_SECONDS for 32 files keeps groups of 32
    monkeypatch.setattr(grouping, "GROUP_SECONDS", 1e-9)
    encoded.clear()
    report = ingest(make_settings(tmp_path / "slow"), encoder, [tmp_path / "data"], background=False)
    assert report.added == 100 and encoded == [32, 32, 32, 4] and write_calls["upsert"] == 4


def test_texts_answered_by_the_encoding_cache_do_not_lengthen_the_groups(
    make_settings: Callable[..., Settings], encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rate that sizes groups is the model's: a folder already in the encoding cache (a second knowledge base
    of it) shows no rate at all, so its groups keep the first size instead of growing past what the model could do
    once files the cache does not have come."""
    for i in range(100):
        (tmp_path / "data").mkdir(exist_ok=True)
        (tmp_path / "data" / f"note-{i:02d}.txt").write_text(f"Note {i}: the office opens at {i % 12 + 1}.", "utf-8")
    cached = CachedEncoder(encoder, EncodingCache(tmp_path / "cache.sqlite"))
    encoded: list[int] = []
    encode = cached.encode
    monkeypatch.setattr(cached, "encode", lambda texts, **kw: encoded.append(len(texts)) or encode(texts, **kw))
    assert ingest(make_settings(tmp_path / "first"), cached, [tmp_path / "data"]).added == 100
    assert encoded == [32, 64, 4] and cached.misses == 100
    encoded.clear()
    assert ingest(make_settings(tmp_path / "second"), cached, [tmp_path / "data"]).added == 100
    assert encoded == [32, 32, 32, 4] and cached.misses == 100 and cached.hits == 100
