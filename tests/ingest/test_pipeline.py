"""The ingest pipeline on real milvus-lite with the tiny bge-m3-format model: contents, vectors, incremental runs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.chunker import TokenChunker
from ingest.pipeline import IngestPipeline
from ingest.readers import read_file
from ingest.readers.tables import chunk_section
from ingest.report import FileResult, SilentProgress
from rag.config import Settings
from rag.encoder import Encoder
from rag.store import MilvusStore
from tests.conftest import EXAMPLES

EXPECTED_DOCUMENTS = {
    "README.md", "faq-zh.md", "hr-policy-zh.txt", "onboarding.docx", "product-faq.md",
    "remote-work-policy.html", "tech-note-sync.pdf", *(f"glossary.csv#G0{i}" for i in range(1, 9)),
}


def ingest(settings: Settings, encoder: Encoder, paths: list[Path], **kwargs: Any):
    with MilvusStore(settings.milvus) as store:
        return IngestPipeline(settings, encoder, store, data_dir=settings.app.data_dir).run(paths, **kwargs)


def snapshot(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every stored chunk by id: its text, document, index and vectors."""
    with MilvusStore(settings.milvus) as store:
        base = store.open(settings.kb.name)
        rows = [row for doc_id in base.documents() for row in base.chunks(doc_id, vectors=True)]
    return {
        r["id"]: {"doc_id": r["doc_id"], "chunk_index": r["chunk_index"], "text": r["text"],
                  "dense": np.asarray(r["dense"], np.float32), "sparse": r["sparse"]}
        for r in rows
    }


def expected_chunks(settings: Settings, encoder: Encoder, folder: Path) -> dict[str, list[str]]:
    """Chunk texts per document, from the readers and the chunker directly (tables by whole rows)."""
    chunker = TokenChunker(encoder.tokenizer, settings.chunking.chunk_tokens, settings.chunking.overlap_tokens)
    out: dict[str, list[str]] = {}
    for path in sorted(folder.iterdir()):
        for doc in read_file(path):
            doc_id = path.name if doc.key is None else f"{path.name}#{doc.key}"
            out[doc_id] = [c for section in doc.sections for c in chunk_section(section, chunker)]
    return out


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    shutil.copytree(EXAMPLES, folder)
    return folder


def test_examples_ingest_documents_chunks_and_reference_vectors(settings: Settings, encoder: Encoder) -> None:
    report = ingest(settings, encoder, [EXAMPLES])
    assert report.ok and report.added == len(EXPECTED_DOCUMENTS)

    stored = snapshot(settings)
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for row in stored.values():
        by_doc.setdefault(row["doc_id"], []).append(row)
    assert set(by_doc) == EXPECTED_DOCUMENTS
    expected = expected_chunks(settings, encoder, EXAMPLES)
    for doc_id, rows in by_doc.items():
        rows.sort(key=lambda r: r["chunk_index"])
        assert [r["text"] for r in rows] == expected[doc_id], doc_id
        assert [r["chunk_index"] for r in rows] == list(range(len(rows)))
    assert len(stored) == report.chunks_written == sum(len(v) for v in expected.values())
    assert all(encoder.count_tokens(r["text"]) <= settings.chunking.chunk_tokens for r in stored.values())

    rows = list(stored.values())
    ref = encoder.flag_model.encode(  # type: ignore[attr-defined]
        [r["text"] for r in rows], batch_size=8, max_length=settings.embedding.max_length,
        return_dense=True, return_sparse=True, return_colbert_vecs=False,
    )
    np.testing.assert_allclose(np.stack([r["dense"] for r in rows]), ref["dense_vecs"], atol=1e-5)
    for row, weights in zip(rows, ref["lexical_weights"], strict=True):
        assert set(row["sparse"]) == {int(k) for k in weights}
        for token, weight in weights.items():
            assert row["sparse"][int(token)] == pytest.approx(float(weight), abs=1e-5)


def test_rerun_encodes_nothing_and_changes_nothing(settings: Settings, encoder: Encoder) -> None:
    ingest(settings, encoder, [EXAMPLES])
    before = snapshot(settings)
    encoded = encoder.texts_encoded
    report = ingest(settings, encoder, [EXAMPLES])
    assert encoder.texts_encoded == encoded
    assert (report.added, report.updated, report.unchanged, report.chunks_written) == (0, 0, len(EXPECTED_DOCUMENTS), 0)
    after = snapshot(settings)
    assert before.keys() == after.keys()
    for chunk_id, row in before.items():
        assert row["text"] == after[chunk_id]["text"] and row["sparse"] == after[chunk_id]["sparse"]
        np.testing.assert_array_equal(row["dense"], after[chunk_id]["dense"])


def test_modified_file_replaces_only_its_chunks(settings: Settings, encoder: Encoder, kb_copy: Path) -> None:
    ingest(settings, encoder, [kb_copy])
    before = snapshot(settings)
    policy = kb_copy / "hr-policy-zh.txt"
    addition = "\n\n补充：年假可以顺延到下一年第一季度。\n"
    policy.write_text(policy.read_text(encoding="utf-8") + addition, encoding="utf-8")
    encoded = encoder.texts_encoded
    report = ingest(settings, encoder, [kb_copy])
    after = snapshot(settings)

    assert (report.added, report.updated) == (0, 1)
    changed = before.keys() ^ after.keys()
    assert {(before.get(cid) or after[cid])["doc_id"] for cid in changed} == {"hr-policy-zh.txt"}
    new_policy = sorted(
        (r for r in after.values() if r["doc_id"] == "hr-policy-zh.txt"), key=lambda r: r["chunk_index"]
    )
    assert "顺延到下一年第一季度" in new_policy[-1]["text"]
    assert encoder.texts_encoded - encoded == len(new_policy)
    assert len(after) == len(before) - sum(r["doc_id"] == "hr-policy-zh.txt" for r in before.values()) + len(new_policy)


def test_prune_removes_deleted_files(settings: Settings, encoder: Encoder, kb_copy: Path) -> None:
    ingest(settings, encoder, [kb_copy])
    (kb_copy / "glossary.csv").unlink()
    (kb_copy / "onboarding.docx").unlink()
    kept = ingest(settings, encoder, [kb_copy])  # without --prune nothing is deleted
    assert kept.pruned == 0 and any(r["doc_id"] == "onboarding.docx" for r in snapshot(settings).values())

    report = ingest(settings, encoder, [kb_copy], prune=True)
    assert report.pruned == 9  # 8 glossary rows + the docx
    remaining = {r["doc_id"] for r in snapshot(settings).values()}
    assert remaining == EXPECTED_DOCUMENTS - {"onboarding.docx"} - {f"glossary.csv#G0{i}" for i in range(1, 9)}


def test_dry_run_writes_nothing(settings: Settings, encoder: Encoder) -> None:
    encoded = encoder.texts_encoded
    report = ingest(settings, encoder, [EXAMPLES], dry_run=True)
    assert report.added == len(EXPECTED_DOCUMENTS) and report.chunks_written == 0
    assert encoder.texts_encoded == encoded
    with MilvusStore(settings.milvus) as store:
        assert not store.exists(settings.kb.name)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("gbk.txt", "员工每年享有十五天带薪年假。\n\n请在系统中提交申请，经理审批后生效。".encode("gbk")),
        ("utf16.txt", "\ufeff远程办公：每周最多三天。\n\nRemote work: up to three days a week.".encode("utf-16-le")),
    ],
)
def test_chinese_encodings_ingest_with_correct_text(
    settings: Settings, encoder: Encoder, tmp_path: Path, name: str, data: bytes
) -> None:
    folder = tmp_path / "enc"
    folder.mkdir()
    (folder / name).write_bytes(data)
    report = ingest(settings, encoder, [folder])
    assert report.ok
    text = "\n\n".join(r["text"] for r in sorted(snapshot(settings).values(), key=lambda r: r["chunk_index"]))
    expected = data.decode("utf-16" if name.startswith("utf16") else "gbk").lstrip("\ufeff")
    for paragraph in expected.split("\n\n"):
        assert paragraph in text


def test_server_uri_ingests_the_same(
    make_settings: Callable[..., Settings], encoder: Encoder, milvus_server: str, tmp_path: Path
) -> None:
    local = make_settings(tmp_path)
    server = make_settings(tmp_path, milvus={"uri": milvus_server}, kb={"name": "server_kb"})
    ingest(local, encoder, [EXAMPLES])
    report = ingest(server, encoder, [EXAMPLES])
    assert report.ok
    assert snapshot(server).keys() == snapshot(local).keys()


def stored_documents(settings: Settings) -> dict[str, str]:
    """Every stored document's full text (its chunks joined in order), by doc_id."""
    with MilvusStore(settings.milvus) as store:
        base = store.open(settings.kb.name)
        return {doc_id: "\n".join(r["text"] for r in base.chunks(doc_id)) for doc_id in base.documents()}


def two_folders(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "A", tmp_path / "B"
    for folder, words in ((first, "Alpha team handbook: leave is fifteen days."),
                          (second, "Beta team handbook: remote work three days.")):
        folder.mkdir()
        (folder / "readme.txt").write_text(words, encoding="utf-8")
    return first, second


def test_item6_same_relative_path_in_two_folders_are_two_documents(
    settings: Settings, encoder: Encoder, tmp_path: Path
) -> None:
    first, second = two_folders(tmp_path)
    report = ingest(settings, encoder, [first, second])
    assert report.ok and report.added == 2
    docs = stored_documents(settings)
    assert docs == {"readme.txt": "Alpha team handbook: leave is fifteen days.",
                    f"{second.resolve().as_posix()}/readme.txt": "Beta team handbook: remote work three days."}

    encoded = encoder.texts_encoded
    again = ingest(settings, encoder, [second, first])  # stable across runs, whatever the order
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    assert encoder.texts_encoded == encoded and stored_documents(settings) == docs


def test_item6_a_then_b_keeps_both_and_a_then_a_b_does_not_churn(
    settings: Settings, encoder: Encoder, tmp_path: Path
) -> None:
    first, second = two_folders(tmp_path)
    ingest(settings, encoder, [first])
    ingest(settings, encoder, [first])
    report = ingest(settings, encoder, [second])
    assert (report.added, report.updated) == (1, 0)
    assert set(stored_documents(settings).values()) == {
        "Alpha team handbook: leave is fifteen days.", "Beta team handbook: remote work three days."}

    encoded = encoder.texts_encoded
    both = ingest(settings, encoder, [first, second], prune=True)
    assert (both.added, both.updated, both.unchanged, both.pruned) == (0, 0, 2, 0)
    assert encoder.texts_encoded == encoded


def test_item6_knowledge_base_of_the_landed_id_scheme_keeps_working(
    settings: Settings, encoder: Encoder, kb_copy: Path, tmp_path: Path
) -> None:
    """A KB written with relative-path ids (the landed scheme: the second folder's readme won) is reused as is."""
    first, second = two_folders(tmp_path)
    ingest(settings, encoder, [kb_copy, second])
    before = snapshot(settings)
    assert {r["doc_id"] for r in before.values()} == EXPECTED_DOCUMENTS | {"readme.txt"}

    encoded = encoder.texts_encoded
    report = ingest(settings, encoder, [kb_copy, first, second], prune=True)
    after = snapshot(settings)
    assert report.ok and (report.added, report.updated, report.pruned) == (1, 0, 0)
    assert before.keys() <= after.keys() and all(after[cid]["text"] == row["text"] for cid, row in before.items())
    docs = stored_documents(settings)
    assert docs["readme.txt"] == "Beta team handbook: remote work three days."
    assert docs[f"{first.resolve().as_posix()}/readme.txt"] == "Alpha team handbook: leave is fifteen days."
    assert encoder.texts_encoded - encoded == 1  # only the first folder's readme, nothing already stored


def test_item7_prune_keeps_documents_under_a_folder_that_cannot_be_listed(
    settings: Settings, encoder: Encoder, tmp_path: Path
) -> None:
    folder, real = tmp_path / "kb", tmp_path / "real-sub"
    folder.mkdir()
    real.mkdir()
    (folder / "top.txt").write_text("Top level note about leave.", encoding="utf-8")
    (real / "inner.txt").write_text("Inner note about remote work.", encoding="utf-8")
    (folder / "sub").symlink_to(real)
    ingest(settings, encoder, [folder])
    assert set(stored_documents(settings)) == {"top.txt", "sub/inner.txt"}

    (folder / "sub").unlink()
    (folder / "sub").symlink_to(unlistable_folder(tmp_path))
    report = ingest(settings, encoder, [folder], prune=True)
    assert not report.ok and report.pruned == 0
    assert [(r.source, r.reason) for r in report.failed] == [("sub", "cannot list folder: permission denied")]
    assert set(stored_documents(settings)) == {"top.txt", "sub/inner.txt"}


def unlistable_folder(tmp_path: Path) -> Path:
    """A folder whose listing fails: chmod 000 for a normal user; for root (who may list anything), a /proc
    folder the kernel refuses to list (another process's map_files)."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0)
        return locked
    for candidate in ("/proc/1/map_files", "/proc/1/root"):
        try:
            os.listdir(candidate)
        except PermissionError:
            return Path(candidate)
    pytest.skip("no folder that root cannot list on this machine")


class RecordingProgress(SilentProgress):
    """A ProgressListener that keeps every event in order."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def chunking(self, source: str, done_chars: int, total_chars: int) -> None:
        self.events.append(("chunking", source, done_chars, total_chars))

    def file_done(self, result: FileResult) -> None:
        self.events.append(("file_done", result.source))


def test_item11_progress_events_arrive_while_a_big_file_is_chunked(
    settings: Settings, encoder: Encoder, tmp_path: Path
) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    sentence = "Employees get fifteen days of annual leave and may work remotely three days a week. "
    (folder / "one-line.txt").write_text(sentence * 4000, encoding="utf-8")  # 340k characters, no newline
    (folder / "small.txt").write_text(sentence, encoding="utf-8")
    progress = RecordingProgress()
    report = ingest(settings, encoder, [folder], dry_run=True, progress=progress)
    assert report.ok
    big = [e for e in progress.events if e[0] == "chunking"]
    assert {e[1] for e in big} == {"one-line.txt"} and len(big) >= 3
    assert [e[2] for e in big] == sorted(e[2] for e in big) and big[-1][2] == big[-1][3] > 300_000
    assert progress.events.index(big[-1]) < progress.events.index(("file_done", "one-line.txt"))


def test_moved_folder_keeps_its_document_ids_and_vectors(settings: Settings, encoder: Encoder, tmp_path: Path) -> None:
    first, second = two_folders(tmp_path)
    ingest(settings, encoder, [first])
    moved = first.rename(tmp_path / "A-moved")
    encoded = encoder.texts_encoded
    report = ingest(settings, encoder, [moved, second])  # the moved readme keeps its id; B's gets its own
    assert (report.added, report.unchanged) == (1, 1) and encoder.texts_encoded - encoded == 1
    assert set(stored_documents(settings)) == {"readme.txt", f"{second.resolve().as_posix()}/readme.txt"}


def test_item8_a_path_too_long_for_a_document_id_fails_alone(
    settings: Settings, encoder: Encoder, tmp_path: Path
) -> None:
    folder = tmp_path / "deep"
    deep = folder.joinpath(*["folder" * 40] * 9)  # 9 levels of 240 characters: over the 2048 of an id
    deep.mkdir(parents=True)
    (deep / "note.txt").write_text("A deeply filed note about leave.", encoding="utf-8")
    (folder / "top.txt").write_text("A note about remote work.", encoding="utf-8")
    report = ingest(settings, encoder, [folder])
    assert [r.reason for r in report.failed] == ["path too long for a document id (2177 characters, at most 2048)"]
    assert set(stored_documents(settings)) == {"top.txt"}
