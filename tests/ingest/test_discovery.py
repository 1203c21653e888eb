"""File discovery: include/exclude globs follow .gitignore rules on paths relative to the folder given."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ingest.discovery import FileFinder
from rag.config import IngestSettings, Settings
from rag.errors import InvalidInputError
from tests.conftest import run_cli

TREE = [
    "top.md",
    "notes.txt",
    "docs/a.md",
    "docs/b.txt",
    "docs/sub/c.md",
    "docs/sub/deeper/d.md",
    "drafts/e.md",
    "drafts/sub/f.md",
    "other/drafts/g.md",
    "other/h.md",
    ".hidden/i.md",
    "pkg/__pycache__/j.txt",
    "pkg/.k.md",
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in TREE:
        path = tmp_path / "kb" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"text of {name}\n", encoding="utf-8")
    return tmp_path / "kb"


def found(tree: Path, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[str]:
    return [f.source for f in FileFinder(include, exclude).find([tree]).files]


def test_star_does_not_cross_a_slash(tree: Path) -> None:
    assert found(tree, include=["docs/*.md"]) == ["docs/a.md"]


def test_double_star_crosses_folders(tree: Path) -> None:
    assert found(tree, include=["docs/**/*.md"]) == ["docs/a.md", "docs/sub/c.md", "docs/sub/deeper/d.md"]


def test_a_bare_name_pattern_matches_at_any_depth(tree: Path) -> None:
    assert found(tree, include=["*.txt"]) == ["docs/b.txt", "notes.txt", "pkg/__pycache__/j.txt"]


def test_a_pattern_with_a_leading_slash_is_anchored(tree: Path) -> None:
    assert found(tree, include=["/*.md"]) == ["top.md"]


def test_an_excluded_folder_is_skipped_at_any_depth(tree: Path) -> None:
    assert found(tree, include=["*.md"], exclude=["drafts/"]) == [
        ".hidden/i.md", "docs/a.md", "docs/sub/c.md", "docs/sub/deeper/d.md", "other/h.md", "pkg/.k.md", "top.md",
    ]


def test_an_anchored_folder_exclude_keeps_folders_of_that_name_elsewhere(tree: Path) -> None:
    assert "other/drafts/g.md" in found(tree, exclude=["/drafts/"])
    assert not {"drafts/e.md", "drafts/sub/f.md"} & set(found(tree, exclude=["/drafts/"]))


def test_a_negated_pattern_takes_back_an_earlier_match(tree: Path) -> None:
    assert found(tree, include=["*.md", "!docs/**"]) == [
        ".hidden/i.md", "drafts/e.md", "drafts/sub/f.md", "other/drafts/g.md", "other/h.md", "pkg/.k.md", "top.md",
    ]


def test_default_excludes_skip_hidden_files_and_caches(tree: Path) -> None:
    sources = found(tree, exclude=IngestSettings().exclude)
    assert sources == [
        "docs/a.md", "docs/b.txt", "docs/sub/c.md", "docs/sub/deeper/d.md", "drafts/e.md", "drafts/sub/f.md",
        "notes.txt", "other/drafts/g.md", "other/h.md", "top.md",
    ]


def test_a_file_given_by_name_is_matched_by_its_name_against_include_only(tree: Path) -> None:
    finder = FileFinder(include=["*.md"], exclude=["*.md"])
    assert [f.source for f in finder.find([tree / "docs" / "a.md", tree / "notes.txt"]).files] == ["a.md"]


@pytest.mark.parametrize("bad", ["!", "docs\\"])
def test_an_invalid_glob_is_a_clear_error(bad: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        FileFinder(exclude=["*.tmp", bad])
    assert f"the exclude glob {bad!r} is not a valid gitignore-style pattern" in str(info.value)


def test_rag_ingest_applies_the_globs_and_names_a_bad_one(settings: Settings, tree: Path) -> None:
    result = run_cli([str(tree), "--include", "docs/*.md", "--include", "other/**", "--exclude", "drafts/",
                      "--dry-run"], settings)
    assert result.returncode == 0, result.stdout + result.stderr
    shown = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("added ")}
    assert shown == {"docs/a.md", "other/h.md"}, result.stdout
    bad = run_cli([str(tree), "--exclude", "docs\\"], settings)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert "the exclude glob 'docs\\\\' is not a valid gitignore-style pattern" in " ".join(bad.stderr.split())
