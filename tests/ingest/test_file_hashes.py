"""ingest.file_hashes: a re-ingest knows unchanged files by their stat without reading them, and misses no change."""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ingest.file_hashes as file_hashes
from ingest.discovery import FileStat
from ingest.file_hashes import CACHE_FILENAME, settled, trusted
from ingest.pipeline import IngestPipeline
from ingest.report import IngestReport
from ingest.summary import summarize
from rag.config import Settings
from rag.encoder import Encoder
from rag.store import MilvusStore
from tests.conftest import EXAMPLES

SECOND = 1_000_000_000


def ingest(settings: Settings, encoder: Encoder, folder: Path, *, kb: str | None = None) -> IngestReport:
    with MilvusStore(settings.milvus) as store, IngestPipeline(
        settings, encoder, store, data_dir=settings.app.data_dir
    ) as pipeline:
        return pipeline.run([folder], kb=kb)


def settled_copy(tmp_path: Path) -> Path:
    """The examples, copied, then left alone for longer than a timestamp tick (so that their hashes are recorded)."""
    folder = tmp_path / "kb"
    shutil.copytree(EXAMPLES, folder)
    time.sleep(file_hashes.FINE_TICK_NS / SECOND + 0.05)
    return folder


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The names of the files under ``tmp_path / "kb"`` whose bytes are read whole (how the pipeline hashes a
    file), as they are read."""
    names: list[str] = []
    read_bytes = pathlib.Path.read_bytes

    def counted(self: pathlib.Path) -> bytes:
        if self.parent == tmp_path / "kb":
            names.append(self.name)
        return read_bytes(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", counted)
    return names


def test_a_reingest_reads_no_file_whose_size_times_and_inode_are_as_recorded(
    settings: Settings, encoder: Encoder, tmp_path: Path, reads: list[str]
) -> None:
    folder = settled_copy(tmp_path)
    files = sorted(p.name for p in folder.iterdir())
    first = ingest(settings, encoder, folder)
    assert first.recognised_files == 0 and first.added >= len(files)
    assert sorted(set(reads)) == files
    assert (Path(settings.app.data_dir) / CACHE_FILENAME).is_file()

    reads.clear()
    encoded = encoder.texts_encoded
    second = ingest(settings, encoder, folder)
    assert reads == []
    assert (second.added, second.updated, second.unchanged) == (0, 0, first.added)
    assert second.recognised_files == len(files) and encoder.texts_encoded == encoded
    assert f"{len(files)} unchanged files known by their size and times, not read" in summarize(second).totals


def rewrite_keeping_size_and_times(path: Path, data: bytes, *, by_rename_from: Path | None = None) -> None:
    """``path`` given ``data`` (as many bytes as it had) and its old modification time back, as ``cp -p`` or ``tar``
    would leave it: written in place, or written to ``by_rename_from`` and renamed over it (another inode)."""
    before = path.stat()
    target = by_rename_from or path
    target.write_bytes(data)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    if by_rename_from is not None:
        os.replace(by_rename_from, path)
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.mark.parametrize(("name", "old", "new", "by_rename"), [
    ("product-faq.md", "a", "o", False),  # rewritten in place
    ("hr-policy-zh.txt", "年假", "病假", True),  # an editor's save: written beside it and renamed over it
])
def test_a_file_rewritten_with_its_old_size_and_modification_time_is_read_and_updated(
    settings: Settings, encoder: Encoder, tmp_path: Path, reads: list[str], name: str, old: str, new: str,
    by_rename: bool,
) -> None:
    folder = settled_copy(tmp_path)
    ingest(settings, encoder, folder)
    changed = (folder / name).read_text(encoding="utf-8").replace(old, new)
    rewrite_keeping_size_and_times(folder / name, changed.encode(),
                                   by_rename_from=tmp_path / "replacement" if by_rename else None)

    reads.clear()
    report = ingest(settings, encoder, folder)
    assert set(reads) == {name}  # hashed, then parsed
    assert (report.updated, report.recognised_files) == (1, len(list(folder.iterdir())) - 1)
    with MilvusStore(settings.milvus) as store:
        stored = "".join(r["text"] for r in store.open(settings.kb.name).chunks(name))
    assert new in stored and old not in stored  # the new bytes' text, and none of the old


def test_files_changed_within_a_tick_of_being_seen_are_never_trusted(
    settings: Settings, encoder: Encoder, tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = settled_copy(tmp_path)
    monkeypatch.setattr(file_hashes, "FINE_TICK_NS", 3600 * SECOND)  # every file counts as just written
    ingest(settings, encoder, folder)
    reads.clear()
    report = ingest(settings, encoder, folder)
    assert report.recognised_files == 0 and sorted(set(reads)) == sorted(p.name for p in folder.iterdir())


def test_the_cache_never_decides_alone_a_second_knowledge_base_gets_every_document(
    settings: Settings, encoder: Encoder, tmp_path: Path
) -> None:
    folder = settled_copy(tmp_path)
    first = ingest(settings, encoder, folder)
    other = ingest(settings, encoder, folder, kb="other_kb")
    assert (other.added, other.unchanged, other.recognised_files) == (first.added, 0, 0)


def test_a_damaged_cache_is_left_alone_with_a_warning_and_every_file_is_hashed(
    make_settings: Callable[..., Settings], encoder: Encoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path)
    folder = settled_copy(tmp_path)
    cache = Path(settings.app.data_dir) / CACHE_FILENAME
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not a database " * 100)
    with caplog.at_level(logging.WARNING, logger="ingest.file_hashes"):
        first = ingest(settings, encoder, folder)
        second = ingest(settings, encoder, folder)
    assert "delete the file to start a new cache" in caplog.text and str(cache) in caplog.text
    assert (second.unchanged, second.recognised_files) == (first.added, 0)
    assert cache.read_bytes() == b"not a database " * 100


def test_with_the_cache_off_every_file_is_read(
    make_settings: Callable[..., Settings], encoder: Encoder, tmp_path: Path, reads: list[str]
) -> None:
    settings = make_settings(tmp_path, ingest={"file_hash_cache": False})
    folder = settled_copy(tmp_path)
    ingest(settings, encoder, folder)
    reads.clear()
    report = ingest(settings, encoder, folder)
    assert report.recognised_files == 0 and len(set(reads)) == len(list(folder.iterdir()))
    assert not (Path(settings.app.data_dir) / CACHE_FILENAME).exists()


def cached_paths(settings: Settings) -> set[str]:
    with sqlite3.connect(Path(settings.app.data_dir) / CACHE_FILENAME) as conn:
        return {os.fsdecode(path) for (path,) in conn.execute("SELECT path FROM file_hashes")}


def test_prune_forgets_the_entries_of_deleted_files_and_keeps_the_rest(
    settings: Settings, encoder: Encoder, tmp_path: Path
) -> None:
    folder = settled_copy(tmp_path)
    ingest(settings, encoder, folder)
    every = {str(p) for p in folder.iterdir()}
    assert cached_paths(settings) == every

    deleted, excluded = sorted(folder.iterdir())[:2]
    deleted.unlink()
    with MilvusStore(settings.milvus) as store, IngestPipeline(
        settings, encoder, store, data_dir=settings.app.data_dir
    ) as pipeline:
        pipeline.run([folder], exclude=[excluded.name])  # without prune: nothing is forgotten
        assert cached_paths(settings) == every
        report = pipeline.run([folder], prune=True, exclude=[excluded.name])
    assert report.pruned >= 1
    # the deleted file's entry is gone; the excluded file still exists, so its entry stays
    assert cached_paths(settings) == every - {str(deleted)}


def stat(**changes: Any) -> FileStat:
    base = FileStat(size=10, mtime_ns=100 * SECOND + 5, ctime_ns=100 * SECOND + 7, inode=3, device=1,
                    seen_ns=200 * SECOND)
    return base._replace(**changes)


@pytest.mark.parametrize(("recorded", "now", "expected"), [
    (stat(), stat(seen_ns=300 * SECOND), True),  # seen long after its last change, the same since
    (stat(), stat(size=11), False),
    (stat(), stat(mtime_ns=100 * SECOND + 6), False),
    (stat(), stat(ctime_ns=150 * SECOND), False),  # rewritten and given its old modification time back
    (stat(), stat(inode=4), False),  # replaced by another file (a save by rename)
    (stat(), stat(device=2), False),
    (stat(seen_ns=100 * SECOND + 50_000_000), stat(), False),  # seen within 0.1 s of its change
    (stat(ctime_ns=250 * SECOND), stat(ctime_ns=250 * SECOND), False),  # changed after it was seen (a clock ahead)
    (stat(mtime_ns=100 * SECOND, ctime_ns=100 * SECOND, seen_ns=101 * SECOND), stat(mtime_ns=100 * SECOND,
     ctime_ns=100 * SECOND), False),  # whole-second times (FAT, HFS+): 2 s
    (stat(mtime_ns=100 * SECOND, ctime_ns=100 * SECOND, seen_ns=103 * SECOND), stat(mtime_ns=100 * SECOND,
     ctime_ns=100 * SECOND), True),
])
def test_a_recorded_hash_is_trusted_only_for_the_same_stat_seen_a_tick_after_the_change(
    recorded: FileStat, now: FileStat, expected: bool
) -> None:
    assert trusted(recorded, now) is expected
    assert settled(stat()) and not settled(stat(seen_ns=100 * SECOND + 7))
