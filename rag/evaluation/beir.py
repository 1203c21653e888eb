"""BEIR-layout data: ``corpus.jsonl`` ({_id, title, text}), ``queries.jsonl`` ({_id, text}), ``qrels/*.tsv``."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from rag.errors import InvalidInputError


@dataclass
class BeirSet:
    """Queries that have judgments, and the judgments: qrels[query_id][doc_id] = relevance grade."""

    corpus: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise InvalidInputError(f"{path}: line {number} is not JSON ({exc.msg})") from None
    except FileNotFoundError:
        raise InvalidInputError(f"{path} does not exist") from None
    return rows


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id<TAB>corpus-id<TAB>score`` lines (a header line is skipped); grades <= 0 are kept as 0."""
    qrels: dict[str, dict[str, int]] = {}
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle, delimiter="\t"):
                if len(row) < 3 or row[0] == "query-id":
                    continue
                try:
                    grade = int(float(row[2]))
                except ValueError:
                    raise InvalidInputError(f"{path}: score {row[2]!r} is not a number") from None
                qrels.setdefault(row[0], {})[row[1]] = grade
    except FileNotFoundError:
        raise InvalidInputError(f"{path} does not exist") from None
    if not qrels:
        raise InvalidInputError(f"{path} holds no judgments (query-id, corpus-id, score per line)")
    return qrels


def load_beir(corpus: Path, queries: Path, qrels: Path) -> BeirSet:
    """The queries that appear in ``qrels`` with their text; a judged query missing from queries is an error."""
    if not corpus.is_file():
        raise InvalidInputError(f"corpus {corpus} does not exist")
    judged = load_qrels(qrels)
    texts = {str(row["_id"]): str(row.get("text", "")) for row in _jsonl(queries)}
    missing = [qid for qid in judged if qid not in texts]
    if missing:
        raise InvalidInputError(f"{len(missing)} judged queries are not in {queries}, e.g. {missing[0]!r}")
    return BeirSet(corpus, {qid: texts[qid] for qid in judged}, judged)


def qrels_files(folder: Path) -> list[Path]:
    """The judgment files of a BEIR folder (``qrels/*.tsv``), ``test.tsv`` first."""
    return sorted((folder / "qrels").glob("*.tsv"), key=lambda path: (path.stem != "test", path.name))


def load_beir_folder(folder: Path, qrels: Path | None = None) -> BeirSet:
    """A BEIR folder's judged queries (``queries.jsonl`` and ``qrels`` or its first ``qrels/*.tsv``), to be run
    against a knowledge base that already holds the corpus; ``corpus`` is ``corpus.jsonl`` there (may be absent)."""
    if not folder.is_dir():
        raise InvalidInputError(f"{folder} is not a folder")
    files = qrels_files(folder)
    if qrels is None and not files:
        raise InvalidInputError(f"{folder} has no qrels/*.tsv")
    judged = load_qrels(qrels or files[0])
    texts = {str(row["_id"]): str(row.get("text", "")) for row in _jsonl(folder / "queries.jsonl")}
    missing = [qid for qid in judged if qid not in texts]
    if missing:
        raise InvalidInputError(f"{len(missing)} judged queries are not in queries.jsonl, e.g. {missing[0]!r}")
    return BeirSet(folder / "corpus.jsonl", {qid: texts[qid] for qid in judged}, judged)
