"""Issue #10 attempts against `rag-ingest` as a user runs it: odd file names, huge files, unreadable folders."""

from __future__ import annotations

import os
from pathlib import Path

from rag.config import Settings
from rag.store import MilvusStore
from tests.conftest import run_cli
from tests.ingest.conftest import make_pdf

ODD_NAMES = {  # name on disk -> the document id `rag-ingest list` shows
    'say "hi".txt': 'say "hi".txt',
    "it's.txt": "it's.txt",
    "back\\slash.txt": "back\\slash.txt",
    "new\nline.txt": "new\nline.txt",
    "cr\rname.txt": "cr\rname.txt",
    "tab\tname.txt": "tab\tname.txt",
    "远程办公.txt": "远程办公.txt",
    os.fsdecode(b"latin-\xe9t\xe9.txt"): "latin-\\xe9t\\xe9.txt",  # not UTF-8: its bytes as \xNN
}


def stored_documents(settings: Settings) -> dict[str, str]:
    """doc_id -> source of every stored document."""
    with MilvusStore(settings.milvus) as store:
        return {d.doc_id: d.source for d in store.open(settings.kb.name).documents().values()}


def test_item8_odd_file_names_are_ingested_listed_pruned_and_deleted(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    for number, name in enumerate(ODD_NAMES):
        (folder / name).write_text(f"Note {number} about annual leave and remote work.", encoding="utf-8")

    first = run_cli([str(folder)], settings)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Traceback" not in first.stderr
    assert stored_documents(settings) == {doc_id: doc_id for doc_id in ODD_NAMES.values()}

    again = run_cli([str(folder), "--prune"], settings)
    assert again.returncode == 0, again.stdout + again.stderr
    assert stored_documents(settings) == {doc_id: doc_id for doc_id in ODD_NAMES.values()}  # none pruned

    listed = run_cli(["list"], settings)
    assert listed.returncode == 0 and "latin-\\xe9t\\xe9.txt" in listed.stdout and "远程办公.txt" in listed.stdout

    # By the id `list` shows, by the name on disk (bytes that are not UTF-8), and ids with a newline or quotes.
    deleted = run_cli(["delete", "new\nline.txt", os.fsdecode(b"latin-\xe9t\xe9.txt"), 'say "hi".txt'], settings)
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert "deleted 3 documents" in deleted.stdout
    by_shown_id = run_cli(["delete", "back\\slash.txt"], settings)
    assert by_shown_id.returncode == 0 and "deleted 1 documents" in by_shown_id.stdout
    assert set(stored_documents(settings)) == set(ODD_NAMES.values()) - {
        "new\nline.txt", "latin-\\xe9t\\xe9.txt", 'say "hi".txt', "back\\slash.txt"}


def test_cli_shows_reading_progress_of_a_long_pdf_and_none_for_a_short_one(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "pdfs"
    folder.mkdir()
    (folder / "long.pdf").write_bytes(make_pdf([f"Page {n} of the handbook." for n in range(1, 121)]))
    (folder / "short.pdf").write_bytes(make_pdf([f"Page {n} of a memo." for n in range(1, 11)]))
    result = run_cli([str(folder), "--dry-run"], settings)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    reading = [ln for ln in lines if ln.startswith("reading     long.pdf: ")]
    percents = [int(ln.rsplit(" ", 1)[1].rstrip("%")) for ln in reading]
    assert percents == list(range(0, 101, 10)), result.stdout  # a line per tenth, in order
    assert lines.index(reading[-1]) < next(i for i, ln in enumerate(lines) if ln.startswith("added       long.pdf"))
    assert not any(ln.startswith("reading     short.pdf") for ln in lines)


def test_item8_a_file_named_like_a_home_folder_is_ingested(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "~nosuchuser.txt").write_text("A note about annual leave.", encoding="utf-8")
    result = run_cli(["~nosuchuser.txt", "./~nosuchuser.txt"], settings, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert stored_documents(settings) == {"~nosuchuser.txt": "~nosuchuser.txt"}


def test_item11_cli_shows_chunking_progress_of_a_huge_one_line_file(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    sentence = "Employees get fifteen days of annual leave and may work remotely three days a week. "
    (folder / "one-line.txt").write_text(sentence * 6000, encoding="utf-8")  # 500k characters, no newline
    result = run_cli([str(folder), "--dry-run"], settings)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    chunking = [ln for ln in lines if ln.startswith("chunking    one-line.txt: ")]
    percents = [int(ln.rsplit(" ", 1)[1].rstrip("%")) for ln in chunking]
    assert len(percents) >= 3 and percents == sorted(percents) and percents[-1] == 100, result.stdout
    added = next(i for i, ln in enumerate(lines) if ln.startswith("added       one-line.txt"))
    assert lines.index(chunking[-1]) < added
