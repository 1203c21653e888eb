"""Uploaded files: safe names, the size limit, a Streamlit progress listener and the ingest summary."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import streamlit as st

from ingest import FileResult, IngestReport, summarize
from ui.i18n import t
from ui.safe_markdown import escape_markdown

MAX_NAME = 120
_UNSAFE = re.compile(r"[^\w.\- ()\[\]+,@]", re.UNICODE)


class Upload(Protocol):
    """What Streamlit's UploadedFile offers (name, size, bytes)."""

    name: str
    size: int

    def getvalue(self) -> bytes: ...


def safe_name(name: str) -> str:
    """A file name safe to write inside the uploads folder: the last path part only, no control or
    path characters, no leading dots (hidden files / ``..``), at most 120 characters, suffix kept."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/")).split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" .")
    name = name.lstrip(".-") or "upload"
    stem, dot, suffix = name.rpartition(".")
    if dot and len(name) > MAX_NAME:
        name = stem[: MAX_NAME - len(suffix) - 1] + "." + suffix
    return name[:MAX_NAME]


def upload_dir(data_dir: str | Path, kb: str) -> Path:
    """Where a knowledge base's uploaded files are kept: ``<data_dir>/uploads/<kb>/``."""
    return Path(data_dir) / "uploads" / kb


@dataclass
class SavedUploads:
    paths: list[Path]
    rejected: list[FileResult]


def save_uploads(files: Iterable[Upload], folder: Path, max_mb: float) -> SavedUploads:
    """Write the files under ``folder`` with safe names; files over ``max_mb`` are rejected with a reason."""
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    saved = SavedUploads([], [])
    for upload in files:
        name = safe_name(upload.name)
        size_mb = upload.size / 1024 / 1024
        if size_mb > max_mb:
            saved.rejected.append(FileResult(name, "failed", reason=t("too_large", size=size_mb, mb=max_mb)))
            continue
        target = (root / name).resolve()
        if target.parent != root:  # cannot happen after safe_name; refuse rather than write elsewhere
            saved.rejected.append(FileResult(name, "failed", reason="unsafe file name"))
            continue
        target.write_bytes(upload.getvalue())
        if target not in saved.paths:
            saved.paths.append(target)
    return saved


class StreamlitProgress:
    """ProgressListener (ingest.report) drawing a Streamlit progress bar: files done and chunks encoded."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.files = self.done = self.chunks = self.chunks_done = 0

    def started(self, files: int) -> None:
        self.files = files
        self._draw()

    def file_done(self, result: FileResult) -> None:
        if result.outcome != "pruned":
            self.done += 1
        self._draw()

    def chunks_planned(self, chunks: int) -> None:
        self.chunks += chunks
        self._draw()

    def encoded(self, texts: int, tokens: int) -> None:
        self.chunks_done += texts
        self._draw()

    def chunking(self, source: str, done_chars: int, total_chars: int) -> None:
        """A long file is being chunked; its name stays out of the (Markdown) bar text."""
        self._share("chunking", done_chars, total_chars)

    def reading(self, source: str, done_pages: int, total_pages: int) -> None:
        """A long PDF being read; the file's name stays out of the (Markdown) bar text."""
        self._share("reading", done_pages, total_pages)

    def _share(self, message: str, done: int, total: int) -> None:
        files = self.done / self.files if self.files else 0.0
        percent = round(100 * done / total) if total else 100
        self.bar.progress(min(1.0, files), text=t(message, done=self.done, files=self.files, percent=percent))

    def ocr(self, source: str, done_pages: int, total_pages: int) -> None:
        """Pages being OCR'd (seconds each); the file's name stays out of the (Markdown) bar text."""
        files = self.done / self.files if self.files else 0.0
        self.bar.progress(min(1.0, files), text=t("ocr_progress", done=self.done, files=self.files,
                                                  page=min(done_pages + 1, total_pages), pages=total_pages))

    def _draw(self) -> None:
        files = self.done / self.files if self.files else 0.0
        value = files if not self.chunks else 0.5 * files + 0.5 * min(1.0, self.chunks_done / self.chunks)
        self.bar.progress(min(1.0, value), text=t("progress", done=self.done, files=self.files,
                                                  chunks_done=self.chunks_done, chunks=self.chunks))


def show_summary(report: IngestReport) -> None:
    """The CLI's summary (ingest.summarize): documents per outcome, failed files with their reasons, the totals."""
    summary = summarize(report)
    st.markdown(f"**{t('summary', kb=summary.kb)}**")  # a knowledge-base name: letters, digits, underscores
    # st.table renders Markdown (images too) in its cells: only our own words and numbers here
    st.table([{"outcome": outcome, "documents": documents} for outcome, documents in summary.outcomes])
    if summary.failed:
        st.error(t("failed_files") + "\n\n" + "\n".join(
            f"- {escape_markdown(source)}: {escape_markdown(reason)}" for source, reason in summary.failed))
    if summary.ocr:
        st.caption(t("ocr_done") + "\n\n" + "\n".join(
            f"- {escape_markdown(source)}: {pages}" for source, pages in summary.ocr))  # pages: our words, digits
    st.caption(summary.totals)  # our words and numbers
