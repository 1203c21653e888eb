"""`rag-ingest` as a user runs it: bad inputs, kill -9 and rerun, model mismatch, a locked database, subcommands."""

from __future__ import annotations

import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.config import MilvusSettings, Settings
from rag.store import MilvusStore
from rag.testing.tiny_bge_m3 import build_bge_m3_like
from tests.conftest import EXAMPLES, cli_env, example_texts, run_cli
from tests.ingest.conftest import encrypt_pdf, make_pdf
from tests.support.ollama_server import free_port


def stored_ids(settings: Settings, kb: str | None = None) -> list[str]:
    with MilvusStore(settings.milvus) as store:
        base = store.open(kb or settings.kb.name)
        return sorted(cid for doc in base.documents().values() for cid in doc.chunk_ids)


def test_bad_inputs_are_reported_and_good_files_ingested(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# Leave\n\nEmployees get fifteen days of annual leave.\n", encoding="utf-8")
    (folder / "好.txt").write_text("远程办公每周最多三天。", encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    rng = random.Random(1)
    (folder / "binary.txt").write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<>> garbage without xref\n")
    (folder / "locked.pdf").write_bytes(encrypt_pdf(make_pdf(["secret page"]), "pw"))
    (folder / "huge.txt").write_text("big " * 400_000, encoding="utf-8")  # 1.6 MB, over the 1 MB limit below
    (folder / "folder.txt").mkdir()  # a directory with a text extension
    (folder / "dangling.md").symlink_to(folder / "missing-target.md")
    (folder / "unreadable.txt").symlink_to("/proc/self/mem")  # reading it fails with EIO, even as root
    (folder / "loop").mkdir()
    (folder / "loop" / "again").symlink_to(folder / "loop")
    env_settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"max_file_mb": 1.0})})

    result = run_cli([str(folder), str(tmp_path / "does-not-exist")], env_settings)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    reasons = {
        "empty.txt": "empty file",
        "binary.txt": "binary content",
        "corrupt.pdf": "PDF",
        "locked.pdf": "encrypted",
        "huge.txt": "over the 1 MB limit",
        "dangling.md": "broken symbolic link",
        "unreadable.txt": "input/output error",
        "loop/again": "symlink loop",
        "does-not-exist": "path does not exist",
    }
    for source, reason in reasons.items():
        line = next((ln for ln in out.splitlines() if source in ln and reason.lower() in ln.lower()), None)
        assert line is not None, f"{source}: {reason!r} not reported in\n{out}"
    with MilvusStore(settings.milvus) as store:
        docs = store.open(settings.kb.name).documents()
    assert set(docs) == {"good.md", "好.txt"}  # nothing partial from the bad files


def _write_large_folder(folder: Path, files: int) -> None:
    rng = random.Random(7)
    sentences = example_texts()[0].split("\n")
    sentences = [s for s in sentences if len(s) > 20]
    folder.mkdir()
    for i in range(files):
        body = "\n\n".join(" ".join(rng.choice(sentences) for _ in range(6)) for _ in range(5))
        (folder / f"doc-{i:03d}.md").write_text(f"# Document {i}\n\n{body}\n", encoding="utf-8")


def test_kill_9_mid_run_then_rerun_equals_clean_ingest(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    folder = tmp_path / "large"
    _write_large_folder(folder, 40)
    killed = make_settings(tmp_path / "killed", ingest={"documents_per_batch": 2})
    clean = make_settings(tmp_path / "clean", ingest={"documents_per_batch": 2})

    exe = Path(sys.executable).parent / "rag-ingest"
    proc = subprocess.Popen([str(exe), str(folder)], env=cli_env(killed), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    done = 0
    assert proc.stdout is not None
    for line in proc.stdout:  # one line per file when stdout is not a terminal
        done += line.startswith("added")
        if done >= 10:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL and 10 <= done < 40  # killed mid-run, not after it finished

    partial = stored_ids(killed)
    assert len(partial) > 0
    rerun = run_cli([str(folder)], killed)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert run_cli([str(folder)], clean).returncode == 0
    assert stored_ids(killed) == stored_ids(clean)


def test_an_unchanged_folder_is_reingested_without_loading_the_model(
    settings: Settings, tmp_path: Path, tiny_model_dir: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    env = {"RAG_EMBEDDING__MODEL": str(model)}
    folder = tmp_path / "docs"
    shutil.copytree(EXAMPLES, folder)
    first = run_cli([str(folder)], settings, extra_env=env)
    assert first.returncode == 0 and "Loading embedding model" in first.stdout, first.stdout + first.stderr

    (model / "model.safetensors").write_bytes(b"weights that cannot be loaded")
    again = run_cli([str(folder)], settings, extra_env=env)  # nothing to encode: the weights are never read
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Loading embedding model" not in again.stdout and "no encoding needed" in again.stdout

    (folder / "new-note.md").write_text("# New\n\nA note that needs encoding.\n", encoding="utf-8")
    changed = run_cli([str(folder)], settings, extra_env=env)
    message = " ".join(changed.stderr.split())
    assert changed.returncode == 2 and "Traceback" not in changed.stderr, changed.stdout + changed.stderr
    assert f"Embedding model at {model} could not be loaded" in message


def test_other_model_dimension_is_a_clear_error(
    settings: Settings, tmp_path: Path, tiny_model_dir: Path
) -> None:
    assert run_cli([str(EXAMPLES / "faq-zh.md")], settings).returncode == 0
    wider = build_bge_m3_like(tmp_path / "wider", seed=1, extra_texts=example_texts(), max_length=512, hidden_size=48)
    other = settings.model_copy(update={"embedding": settings.embedding.model_copy(update={"model": str(wider)})})
    result = run_cli([str(EXAMPLES / "faq-zh.md")], other)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "32 dimensions" in message and "48 dimensions" in message and "Traceback" not in result.stderr


def test_second_process_on_the_embedded_database_gets_the_message(settings: Settings) -> None:
    with MilvusStore(MilvusSettings(uri=settings.milvus.uri)):
        result = run_cli([str(EXAMPLES / "faq-zh.md")], settings)
    message = " ".join(result.stderr.split())
    assert result.returncode == 2
    assert "is open in another process, e.g. the UI" in message and "milvus-lite server" in message
    assert "Traceback" not in result.stderr


def test_list_delete_and_drop_commands(settings: Settings) -> None:
    assert run_cli([str(EXAMPLES)], settings).returncode == 0
    listing = run_cli(["list"], settings).stdout
    assert "15 documents" in listing and "glossary.csv#G04" in listing

    deleted = run_cli(["delete", "glossary.csv", "product-faq.md"], settings)
    assert deleted.returncode == 0 and "deleted 9 documents" in deleted.stdout
    missing = run_cli(["delete", "nope.md"], settings)
    assert missing.returncode == 1 and "nope.md" in missing.stderr

    kbs = run_cli(["kbs"], settings).stdout
    assert settings.kb.name in kbs and "6" in kbs
    assert run_cli(["drop", "--kb", settings.kb.name, "--yes"], settings).returncode == 0
    with MilvusStore(settings.milvus) as store:
        assert not store.exists(settings.kb.name)


def test_path_named_like_a_command(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "list").mkdir()
    (folder / "list" / "note.txt").write_text("A note in a folder called list.", encoding="utf-8")
    result = run_cli(["--", "list"], settings, cwd=folder)
    assert result.returncode == 0, result.stderr
    result = run_cli(["./list"], settings, cwd=folder)
    assert result.returncode == 0 and "unchanged" in result.stdout


def test_help_documents_the_command_shape(settings: Settings) -> None:
    started = time.perf_counter()
    result = run_cli(["--help"], settings)
    assert result.returncode == 0
    assert "rag-ingest PATH..." in result.stdout and "--" in result.stdout
    assert time.perf_counter() - started < 60


def test_item2_locked_message_binds_the_suggested_server_to_loopback(settings: Settings) -> None:
    with MilvusStore(MilvusSettings(uri=settings.milvus.uri)):
        result = run_cli([str(EXAMPLES / "faq-zh.md")], settings)
    message = " ".join(result.stderr.split())
    assert result.returncode == 2 and "Traceback" not in result.stderr
    command = re.search(r"`milvus-lite server [^`]*`", message)
    assert command is not None, message
    assert "--host 127.0.0.1" in command.group(), command.group()


def test_item2_unreachable_server_message_binds_the_suggested_server_to_loopback(settings: Settings) -> None:
    result = run_cli(["list"], settings, extra_env={"RAG_MILVUS__URI": f"http://127.0.0.1:{free_port()}"})
    message = " ".join(result.stderr.split())
    assert result.returncode == 2 and "not reachable" in message, message
    command = re.search(r"`milvus-lite server [^`]*`", message)
    assert command is not None and "--host 127.0.0.1" in command.group(), message


HOSTILE_NAME = "\x1b[2J[red]x.txt"


def test_item4_file_names_with_escape_codes_and_markup_are_shown_verbatim(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / HOSTILE_NAME).write_text("Employees get fifteen days of annual leave.", encoding="utf-8")
    (folder / "[bold]notes.txt").write_text("Remote work is allowed three days a week.", encoding="utf-8")
    (folder / "[red]empty.txt").write_bytes(b"")  # fails: its line and the failed-files table show the name

    ingested = run_cli([str(folder)], settings)
    listed = run_cli(["list"], settings)
    missing = run_cli(["delete", "\x1b[2Jgone[/red].md"], settings)
    for result in (ingested, listed, missing):
        out = result.stdout + result.stderr
        assert "\x1b" not in out, repr(out)
        assert "Traceback" not in out
    assert ingested.returncode == 1  # the empty file
    shown = "\\x1b[2J[red]x.txt"
    assert shown in ingested.stdout and "[bold]notes.txt" in ingested.stdout
    assert sum("[red]empty.txt" in line and "empty file" in line for line in ingested.stdout.splitlines()) >= 2
    assert shown in listed.stdout and "[bold]notes.txt" in listed.stdout
    assert missing.returncode == 1 and "\\x1b[2Jgone[/red].md" in missing.stderr


def test_item4_error_messages_keep_their_brackets(settings: Settings, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("A note.", encoding="utf-8")
    result = run_cli([str(note)], settings, extra_env={"RAG_EMBEDDING__MODEL": str(tmp_path / "[red]no-model")})
    message = " ".join(result.stderr.split())
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pip install 'ragscope[modelscope]'" in message, message
    assert str(tmp_path / "[red]no-model") in message


@pytest.mark.parametrize("bad", [" ", "it's", 'a" or 1==1', "", "1st", "a-b"])
def test_item5_kb_option_follows_the_kb_name_rule(settings: Settings, tmp_path: Path, bad: str) -> None:
    note = tmp_path / "note.txt"
    note.write_text("A note.", encoding="utf-8")
    result = run_cli([str(note), "--kb", bad], settings)
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Usage:" in result.stderr and "Traceback" not in result.stderr
    assert "letters, digits and underscores" in message, message
    assert not Path(settings.milvus.uri).exists()  # nothing created, not even the database


def test_item5_every_kb_option_follows_the_rule(settings: Settings) -> None:
    assert run_cli([str(EXAMPLES / "faq-zh.md")], settings).returncode == 0
    for args in (["list", "--kb", "it's"], ["delete", "x.md", "--kb", " "], ["drop", "--kb", 'a" or 1==1', "--yes"]):
        result = run_cli(args, settings)
        assert result.returncode == 2 and "Usage:" in result.stderr, args
        assert "letters, digits and underscores" in " ".join(result.stderr.split()), args
    with MilvusStore(settings.milvus) as store:
        assert store.knowledge_bases() == [settings.kb.name]


USAGE_ERRORS = [
    [],
    ["add"],
    ["--bogus"],
    ["add", "x.txt", "--include"],
    ["list", "extra"],
    ["list", "--kb"],
    ["kbs", "--bogus"],
    ["kbs", "extra"],
    ["delete"],
    ["delete", "x.md", "--config"],
    ["drop"],
    ["drop", "--kb", "x", "--yes=maybe"],
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=lambda args: " ".join(args) or "(none)")
def test_item9_usage_errors_print_usage_not_a_traceback(settings: Settings, args: list[str]) -> None:
    result = run_cli(args, settings)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Usage: rag-ingest" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_item9_file_named_like_an_option(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "-name.txt").write_text("A file whose name starts with a dash.", encoding="utf-8")
    result = run_cli(["-name.txt"], settings, cwd=tmp_path)
    message = " ".join(result.stderr.split())
    assert result.returncode == 2 and "Usage: rag-ingest" in result.stderr and "Traceback" not in result.stderr
    assert "./-name.txt" in message and "rag-ingest -- -name.txt" in message, message
    assert not Path(settings.milvus.uri).exists()
    assert run_cli(["./-name.txt"], settings, cwd=tmp_path).returncode == 0
    assert run_cli(["--", "-name.txt"], settings, cwd=tmp_path).returncode == 0
    assert "-name.txt" in run_cli(["list"], settings).stdout


def test_text_field_flag_beats_the_environment_and_config(settings: Settings, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "r1", "body": "annual leave fifteen days", "content": "remote work three days"}\n',
                    encoding="utf-8")
    result = run_cli([str(rows), "--text-field", "content"], settings,
                     extra_env={"RAG_INGEST__TEXT_FIELD": "body"})
    assert result.returncode == 0, result.stdout + result.stderr
    with MilvusStore(settings.milvus) as store:
        [chunk] = store.open(settings.kb.name).chunks("rows.jsonl#r1")
    assert chunk["text"] == "remote work three days"
