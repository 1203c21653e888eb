"""Find the files to ingest under the given paths, with a one-line reason for each one that cannot be."""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from pathspec import GitIgnoreSpec

from ingest.readers import SUPPORTED_SUFFIXES
from rag.errors import InvalidInputError


def display_path(path: str) -> str:
    """``path`` as stored and shown: itself when it is valid Unicode, else with its undecodable bytes as ``\\xNN``.

    os.fsdecode turns bytes that are not UTF-8 into lone surrogates, which Milvus (gRPC, UTF-8) cannot carry.
    The escaped form is readable and stable; the exact bytes are kept apart (``FoundFile.fs_path``).
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return path


class FileStat(NamedTuple):
    """What discovery saw of a file (its ``os.stat``) and when (``seen_ns``, read before the walk began): what the
    file hash cache (ingest.file_hashes) compares to tell a file unchanged without reading it."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int
    seen_ns: int


@dataclass(frozen=True)
class FoundFile:
    """A file to ingest. ``source`` is its path relative to ``root``, with forward slashes (see display_path).

    ``stat``: None where a change time does not follow every change of a file's bytes (Windows: creation time).
    ``known_hash``: the sha256 of its bytes when the file hash cache recognised it, else None (read and hash it).
    """

    path: Path
    root: Path
    source: str
    size: int
    mtime: float
    stat: FileStat | None = None
    known_hash: str | None = None

    @property
    def root_text(self) -> str:
        """The folder as recorded in the chunks' metadata (``root``)."""
        return display_path(str(self.root))

    @cached_property
    def absolute(self) -> Path:
        """The file's absolute path (a file given by name sits in its resolved parent, ``root``)."""
        return self.path if self.path.is_absolute() else self.root / self.path.name

    @cached_property
    def full_source(self) -> str:
        """The file's absolute path: its document id when another file already has the relative one."""
        return display_path(self.absolute.as_posix())

    @property
    def fs_path(self) -> str | None:
        """The path's exact bytes as hex when its name is not valid Unicode (else None), so prune finds it."""
        text = str(self.absolute)
        return None if display_path(text) == text else os.fsencode(text).hex()


@dataclass(frozen=True)
class FailedPath:
    """A path that could not be ingested and why; ``path`` (absolute) when it exists but could not be read."""

    source: str
    reason: str
    path: Path | None = None


@dataclass
class Discovery:
    files: list[FoundFile] = field(default_factory=list)
    failed: list[FailedPath] = field(default_factory=list)
    ignored: int = 0  # files of unsupported types inside folders
    folders: list[Path] = field(default_factory=list)  # the folders walked, resolved


def gitignore_spec(patterns: Sequence[str], what: str) -> GitIgnoreSpec:
    """``patterns`` as one gitignore-style matcher; an invalid one is an InvalidInputError naming it.

    As in .gitignore, paths are relative to the folder given: ``*`` does not cross ``/``, ``**`` does, a
    pattern without a ``/`` (``*.md``) matches a name at any depth, ``docs/*.md`` only directly under
    ``docs``, ``drafts/`` a folder and all below it, and ``!pattern`` takes back an earlier match.
    """
    for pattern in patterns:
        try:
            GitIgnoreSpec.from_lines([pattern])
        except ValueError as exc:
            message = f"the {what} glob {pattern!r} is not a valid gitignore-style pattern ({exc})"
            raise InvalidInputError(message) from exc
    return GitIgnoreSpec.from_lines(patterns)


def _stat_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "too many levels of symbolic links (symlink loop)"
    if exc.errno == errno.ENOENT:
        return "broken symbolic link (its target does not exist)"
    if exc.errno == errno.EACCES:
        return "permission denied"
    return exc.strerror or str(exc)


def _expand_user(path: Path) -> Path:
    """``~/x`` as the home folder's x; a name like ``~x.txt`` with no such user stays a plain name."""
    try:
        return path.expanduser()
    except RuntimeError:
        return path


def _unreadable(source: str, exc: OSError, path: Path) -> FailedPath:
    """A path that exists but cannot be read; a broken symlink (ENOENT) is gone, so prune may still drop it."""
    return FailedPath(source, _stat_reason(exc), None if exc.errno == errno.ENOENT else path)


class FileFinder:
    """Walks paths, following folder symlinks once each, applying include/exclude globs and the size limit.

    The globs follow .gitignore rules (see gitignore_spec) on paths relative to the folder given; a file
    given by name is matched by its name, and only against ``include``.
    """

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = (), max_file_mb: float = 50.0) -> None:
        self.include = gitignore_spec(include, "include") if include else None
        self.exclude = gitignore_spec(exclude, "exclude")
        self.max_bytes = int(max_file_mb * 1024 * 1024)
        self.max_file_mb = max_file_mb
        self._seen_ns = 0

    def find(self, paths: Sequence[str | Path]) -> Discovery:
        found = Discovery()
        self._seen_ns = time.time_ns()  # before any stat: a file changed during the walk has a later change time
        for raw in paths:
            path = _expand_user(Path(raw))
            if not os.path.lexists(path):
                found.failed.append(FailedPath(display_path(str(raw)), "path does not exist"))
            elif path.is_dir():
                found.folders.append(path.resolve())
                self._walk(found.folders[-1], found)
            else:
                self._add(path, path.parent.resolve(), display_path(path.name), found, explicit=True)
        unique = {(str(f.root), f.source): f for f in found.files}  # a path given twice is one file
        found.files = sorted(unique.values(), key=lambda f: (str(f.root), f.source))
        return found

    def _walk(self, root: Path, found: Discovery) -> None:
        seen: set[tuple[int, int]] = set()

        def unreadable(exc: OSError) -> None:
            """A folder that could not be listed: a failure with its reason, and prune keeps what lies under it."""
            folder = Path(exc.filename) if exc.filename else root
            rel = display_path(folder.relative_to(root).as_posix())
            found.failed.append(FailedPath(rel, f"cannot list folder: {_stat_reason(exc)}", folder))

        for folder, dirs, files in os.walk(root, followlinks=True, onerror=unreadable):
            here = Path(folder)
            st = here.stat()
            if (st.st_dev, st.st_ino) in seen:
                rel = display_path(here.relative_to(root).as_posix())
                found.failed.append(FailedPath(rel, "folder symlink loop: this folder was already visited"))
                dirs[:] = []
                continue
            seen.add((st.st_dev, st.st_ino))
            kept = []
            for d in sorted(dirs):
                rel = display_path((here / d).relative_to(root).as_posix())
                if self.exclude.match_file(rel + "/"):  # an excluded folder is not entered
                    continue
                try:
                    (here / d).stat()
                except OSError as exc:
                    found.failed.append(_unreadable(rel, exc, here / d))
                    continue
                kept.append(d)
            dirs[:] = kept
            prefix = here.relative_to(root).as_posix()  # once per folder: a file's is this + its name
            prefix = "" if prefix == "." else prefix + "/"
            for name in sorted(files):
                self._add(here / name, root, display_path(prefix + name), found, explicit=False)

    def _add(self, path: Path, root: Path, source: str, found: Discovery, *, explicit: bool) -> None:
        if not explicit and self.exclude.match_file(source):
            return
        if self.include is not None and not self.include.match_file(source):
            return
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            if explicit:
                kinds = " ".join(sorted(SUPPORTED_SUFFIXES))
                found.failed.append(FailedPath(source, f"unsupported file type {path.suffix or '(none)'}; "
                                                       f"supported: {kinds}"))
            else:
                found.ignored += 1
            return
        try:
            st = path.stat()
        except OSError as exc:
            found.failed.append(_unreadable(source, exc, path.absolute()))
            return
        if not stat.S_ISREG(st.st_mode):
            found.failed.append(FailedPath(source, "not a regular file"))
            return
        if st.st_size > self.max_bytes:
            size_mb = st.st_size / 1024 / 1024
            found.failed.append(FailedPath(
                source, f"file is {size_mb:.1f} MB, over the {self.max_file_mb:g} MB limit (ingest.max_file_mb)"
            ))
            return
        seen = None if os.name == "nt" else FileStat(
            st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, self._seen_ns
        )
        found.files.append(FoundFile(path, root, source, st.st_size, st.st_mtime, seen))
