"""Find the files to ingest under the given paths, with a one-line reason for each one that cannot be."""

from __future__ import annotations

import errno
import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.readers import SUPPORTED_SUFFIXES


@dataclass(frozen=True)
class FoundFile:
    """A file to ingest. ``source`` is its path relative to ``root``, with forward slashes."""

    path: Path
    root: Path
    source: str
    size: int
    mtime: float


@dataclass(frozen=True)
class FailedPath:
    """A path that could not be ingested and why."""

    source: str
    reason: str


@dataclass
class Discovery:
    files: list[FoundFile] = field(default_factory=list)
    failed: list[FailedPath] = field(default_factory=list)
    ignored: int = 0  # files of unsupported types inside folders


def _matches(source: str, patterns: Sequence[str]) -> bool:
    name = source.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(source, p) or fnmatch.fnmatch(name, p) for p in patterns)


def _stat_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "too many levels of symbolic links (symlink loop)"
    if exc.errno == errno.ENOENT:
        return "broken symbolic link (its target does not exist)"
    if exc.errno == errno.EACCES:
        return "permission denied"
    return exc.strerror or str(exc)


class FileFinder:
    """Walks paths, following folder symlinks once each, applying include/exclude globs and the size limit."""

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = (), max_file_mb: float = 50.0) -> None:
        self.include = list(include)
        self.exclude = list(exclude)
        self.max_bytes = int(max_file_mb * 1024 * 1024)
        self.max_file_mb = max_file_mb

    def find(self, paths: Sequence[str | Path]) -> Discovery:
        found = Discovery()
        for raw in paths:
            path = Path(raw).expanduser()
            if not os.path.lexists(path):
                found.failed.append(FailedPath(str(raw), "path does not exist"))
            elif path.is_dir():
                self._walk(path.resolve(), found)
            else:
                self._add(path, path.parent.resolve(), path.name, found, explicit=True)
        found.files.sort(key=lambda f: (str(f.root), f.source))
        return found

    def _walk(self, root: Path, found: Discovery) -> None:
        seen: set[tuple[int, int]] = set()
        for folder, dirs, files in os.walk(root, followlinks=True, onerror=None):
            here = Path(folder)
            st = here.stat()
            if (st.st_dev, st.st_ino) in seen:
                rel = here.relative_to(root).as_posix()
                found.failed.append(FailedPath(rel, "folder symlink loop: this folder was already visited"))
                dirs[:] = []
                continue
            seen.add((st.st_dev, st.st_ino))
            kept = []
            for d in sorted(dirs):
                rel = (here / d).relative_to(root).as_posix()
                if _matches(rel, self.exclude) or _matches(rel + "/", self.exclude):
                    continue
                try:
                    (here / d).stat()
                except OSError as exc:
                    found.failed.append(FailedPath(rel, _stat_reason(exc)))
                    continue
                kept.append(d)
            dirs[:] = kept
            for name in sorted(files):
                rel = (here / name).relative_to(root).as_posix()
                self._add(here / name, root, rel, found, explicit=False)

    def _add(self, path: Path, root: Path, source: str, found: Discovery, *, explicit: bool) -> None:
        if not explicit and _matches(source, self.exclude):
            return
        if self.include and not _matches(source, self.include):
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
            found.failed.append(FailedPath(source, _stat_reason(exc)))
            return
        if not path.is_file():
            found.failed.append(FailedPath(source, "not a regular file"))
            return
        if st.st_size > self.max_bytes:
            size_mb = st.st_size / 1024 / 1024
            found.failed.append(FailedPath(
                source, f"file is {size_mb:.1f} MB, over the {self.max_file_mb:g} MB limit (ingest.max_file_mb)"
            ))
            return
        found.files.append(FoundFile(path, root, source, st.st_size, st.st_mtime))
