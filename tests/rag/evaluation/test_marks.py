"""Managing judgments.jsonl: current marks (latest wins), remove (atomic, nothing else lost), export, import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import InvalidInputError
from rag.evaluation import append_judgment, judgments_path, load_judgments
from rag.evaluation.marks import current_marks, export_marks, import_marks, remove_marks

KB, OTHER = "kb_a", "kb_b"


def mark(data_dir: Path, kb: str, query: str, chunk_id: str, label: str = "relevant") -> None:
    append_judgment(data_dir, kb=kb, query=query, chunk_id=chunk_id, source=f"{chunk_id}.md", label=label)  # type: ignore[arg-type]


@pytest.fixture
def marked(tmp_path: Path) -> Path:
    """A judgments file as the cards write it: two knowledge bases, one mark changed later."""
    mark(tmp_path, KB, "q1", "c1")
    mark(tmp_path, OTHER, "q1", "c1")
    mark(tmp_path, KB, "q1", "c2", "not_relevant")
    mark(tmp_path, KB, "q2", "c3")
    mark(tmp_path, KB, "q1", "c2")  # changed its mind: now relevant
    return judgments_path(tmp_path)


def test_current_marks_latest_wins_and_other_kbs_are_left_out(marked: Path) -> None:
    marks = current_marks(marked, KB)
    assert [(m.query, m.chunk_id, m.label) for m in marks] == [
        ("q1", "c1", "relevant"), ("q2", "c3", "relevant"), ("q1", "c2", "relevant")]
    assert {m.kb for m in marks} == {KB}
    assert load_judgments(marked, KB) == {"q1": {"c1": 1, "c2": 1}, "q2": {"c3": 1}}  # what rag eval reads
    assert current_marks(marked.parent / "none.jsonl", KB) == []


def test_remove_drops_a_mark_with_its_history_and_keeps_every_other_line(marked: Path) -> None:
    before = marked.read_text(encoding="utf-8").splitlines()
    assert remove_marks(marked, KB, [("q1", "c2")]) == 2  # the old "not relevant" line would come back otherwise
    after = marked.read_text(encoding="utf-8").splitlines()
    assert after == [line for line in before if not ('"kb_a"' in line and '"c2"' in line)]
    assert load_judgments(marked, KB) == {"q1": {"c1": 1}, "q2": {"c3": 1}}
    assert load_judgments(marked, OTHER) == {"q1": {"c1": 1}}  # the other knowledge base's mark is kept
    assert remove_marks(marked, KB, [("q9", "c9")]) == 0 and marked.read_text(encoding="utf-8").splitlines() == after
    assert [p.name for p in marked.parent.iterdir()] == [marked.name]  # no temporary file left behind


def test_export_then_import_into_another_kb_gives_the_same_marks(marked: Path, tmp_path: Path) -> None:
    exported = export_marks(marked, KB)
    rows = [json.loads(line) for line in exported.splitlines()]
    assert [(r["query"], r["chunk_id"], r["label"]) for r in rows] == [
        ("q1", "c1", "relevant"), ("q2", "c3", "relevant"), ("q1", "c2", "relevant")]
    target = tmp_path / "elsewhere" / "judgments.jsonl"
    assert import_marks(target, exported, kb="kb_new") == 3
    assert load_judgments(target, "kb_new") == load_judgments(marked, KB)
    assert [(m.source, m.time) for m in current_marks(target, "kb_new")] == [(r["source"], r["time"]) for r in rows]


def test_import_refuses_a_file_with_a_bad_line_and_writes_nothing(marked: Path) -> None:
    before = marked.read_bytes()
    good = json.dumps({"kb": KB, "query": "q5", "chunk_id": "c5", "source": "s", "label": "relevant",
                       "time": "2026-01-01T00:00:00+00:00"})
    for bad, message in [
        ("{not json", "line 3 is not JSON"),
        (json.dumps({"kb": KB, "query": "q", "chunk_id": "c", "label": "maybe"}), "line 3: label must be relevant"),
        (json.dumps({"kb": KB, "query": "q", "label": "relevant"}), "line 3 has no 'chunk_id'"),
        (json.dumps({"kb": KB, "query": "", "chunk_id": "c", "label": "relevant"}), "line 3: 'query' is empty"),
        (json.dumps({"kb": KB, "query": "q", "chunk_id": 7, "label": "relevant"}), "line 3: 'chunk_id' must be text"),
        (json.dumps({"kb": KB, "query": "q", "chunk_id": "c", "label": "relevant", "x": 1}), "unknown field 'x'"),
        ("[1, 2]", "line 3 is not a JSON object"),
    ]:
        with pytest.raises(InvalidInputError, match=message.replace("(", r"\(")):
            import_marks(marked, "\n".join([good, "", bad, good]))
        assert marked.read_bytes() == before, bad
    with pytest.raises(InvalidInputError, match="holds no marks"):
        import_marks(marked, "\n\n")
    assert import_marks(marked, good + "\n") == 1
    assert load_judgments(marked, KB)["q5"] == {"c5": 1}
