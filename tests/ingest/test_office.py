"""Excel and PowerPoint, made here with openpyxl and python-pptx: sheets as documents of "Header: value" rows,
slides as sections with their numbers, bad files with their one-line reasons, and both through a real rag-ingest."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.render import location
from ingest.readers import SUPPORTED_SUFFIXES, ReadError, read_file
from ingest.readers.tables import TableSection
from rag.chain.prompts import block_label
from rag.config import Settings
from rag.encoder import Encoder
from rag.retrieval import HybridRetriever
from rag.store import MilvusStore
from rag.workbench import ChunkBrowser
from tests.conftest import cli_env, run_cli
from tests.ingest.conftest import make_pptx, make_xlsx

FIXTURES = Path(__file__).parent / "fixtures"
STAFF = [
    ["Name", "Department", "Start date", None, "Salary"],
    ["Alice Wang", "People team", dt.date(2024, 1, 2), None, 5200.0],
    [None, None, None, None, None],  # a blank row is skipped
    ["Bob Li", "IT | Ops", dt.datetime(2024, 3, 1, 9, 30), "remote", 4800.5],
]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def reason(path: Path) -> str:
    with pytest.raises(ReadError) as info:
        read_file(path)
    return str(info.value)


def with_cached_value(data: bytes, formula: str, value: str) -> bytes:
    """The workbook with ``value`` cached for ``formula``, as Excel stores it on save (openpyxl stores none)."""
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            body = source.read(item)
            if item.filename.startswith("xl/worksheets/"):
                body = body.replace(f"<f>{formula}</f><v></v>".encode(), f"<f>{formula}</f><v>{value}</v>".encode())
            target.writestr(item, body)
    return out.getvalue()


# --- Excel -----------------------------------------------------------------------------------------------


def test_xlsx_gives_one_document_per_sheet_with_header_names_in_each_row(tmp_path: Path) -> None:
    chinese_rows: list[list[object]] = [["姓名", "部门"], ["张三", "财务"]]
    lists: list[list[object]] = [["Departments"], ["People team"]]
    data = make_xlsx({"Staff": STAFF, "Empty": [], "Blank": [[None, None]], "员工": chinese_rows, "Lists": lists},
                     hidden=("Lists",))
    docs = read_file(write(tmp_path, "people.xlsx", data))
    assert [(d.key, d.title, d.metadata) for d in docs] == [
        ("Staff", "people / Staff", {"file_type": "xlsx", "sheet": "Staff"}),
        ("员工", "people / 员工", {"file_type": "xlsx", "sheet": "员工"}),
    ]
    staff, chinese = (d.sections for d in docs)
    assert [type(s) for s in staff] == [TableSection] and staff[0].metadata == {"heading": "Staff"}
    assert staff[0].head == "Staff"
    assert staff[0].rows == [
        "Name: Alice Wang | Department: People team | Start date: 2024-01-02 | Salary: 5200",
        r"Name: Bob Li | Department: IT \| Ops | Start date: 2024-03-01 09:30:00 | D: remote | Salary: 4800.5",
    ]
    assert chinese[0].text == "员工\n姓名: 张三 | 部门: 财务"
    [titled] = read_file(write(tmp_path, "t.xlsx", make_xlsx({"S": [["a"], ["b"]]}, title="Budget 2025")))
    assert titled.title == "Budget 2025 / S"


def test_xlsx_formulas_read_as_their_cached_values(tmp_path: Path) -> None:
    data = make_xlsx({"Calc": [["Item", "Qty", "Total"], ["Pens", 3, "=B2*2"]]})
    [doc] = read_file(write(tmp_path, "calc.xlsx", with_cached_value(data, "B2*2", "6")))
    assert doc.sections[0].text == "Calc\nItem: Pens | Qty: 3 | Total: 6"


def test_bad_xlsx_and_pptx_get_one_line_reasons(tmp_path: Path) -> None:
    good_xlsx, good_pptx = make_xlsx({"S": [["a"], ["b"]]}), make_pptx([{"title": "Hello"}])
    assert reason(write(tmp_path, "cut.xlsx", good_xlsx[: len(good_xlsx) // 2])) == "corrupt XLSX: not a ZIP package"
    assert reason(write(tmp_path, "cut.pptx", good_pptx[: len(good_pptx) // 2])) == "corrupt PPTX: not a ZIP package"
    old = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)
    assert reason(write(tmp_path, "old.xlsx", old)) == "corrupt XLSX: an old binary .xls file renamed? Save it as .xlsx"
    assert reason(write(tmp_path, "old.pptx", old)) == "corrupt PPTX: an old binary .ppt file renamed? Save it as .pptx"
    other_zip = io.BytesIO()
    with zipfile.ZipFile(other_zip, "w") as package:
        package.writestr("readme.txt", "not a workbook")
    assert reason(write(tmp_path, "zip.xlsx", other_zip.getvalue())).startswith("corrupt XLSX: ")
    assert reason(write(tmp_path, "zip.pptx", other_zip.getvalue())).startswith("corrupt PPTX: ")
    assert reason(write(tmp_path, "empty.xlsx", make_xlsx({"A": [], "B": [[None]]}))) == \
        "no text in XLSX (every sheet is empty)"
    assert reason(write(tmp_path, "blank.pptx", make_pptx([{}]))) == "no text in PPTX"
    for message in (reason(tmp_path / name) for name in ("cut.xlsx", "zip.xlsx", "zip.pptx")):
        assert "\n" not in message and len(message) <= 150


@pytest.mark.parametrize("name", ["encrypted.xlsx", "encrypted.pptx"])
def test_password_protected_xlsx_and_pptx_are_reported_as_encrypted(name: str) -> None:
    """The files were made once with make_xlsx / make_pptx and encrypted (password "secret") by msoffcrypto-tool
    6.1, which writes Office's own "Encrypt with password" format (ECMA-376 agile encryption)."""
    kind = name.rsplit(".", 1)[1].upper()
    assert reason(FIXTURES / name) == f"encrypted {kind} (password protected)"


def test_a_package_that_unpacks_past_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows: list[list[object]] = [["Text"]] + [[f"row {i} " * 20] for i in range(2000)]
    path = write(tmp_path, "big.xlsx", make_xlsx({"S": rows}))
    assert len(read_file(path)[0].sections[0].rows) == 2000
    monkeypatch.setattr("ingest.readers.ooxml.MAX_UNPACKED_MB", 0.1)
    assert reason(path).startswith("XLSX unpacks to 0.") and reason(path).endswith("MB, over the 0.1 MB limit")


def test_office_suffixes_are_supported() -> None:
    assert {".xlsx", ".xls", ".pptx"} <= SUPPORTED_SUFFIXES


def test_old_binary_xls_is_read_like_xlsx(tmp_path: Path) -> None:
    """staff.xls was written once by xlwt 1.3.0 (Excel 97-2003 BIFF8): a sheet of staff with a date column, an
    empty sheet and a hidden one."""
    [document] = read_file(FIXTURES / "staff.xls")
    assert (document.key, document.title, document.metadata) == ("Staff", "staff / Staff",
                                                                 {"file_type": "xls", "sheet": "Staff"})
    [section] = document.sections
    assert isinstance(section, TableSection) and section.metadata == {"heading": "Staff"}
    assert section.rows == ["Name: Alice Zhang | Team: Sync | Start: 2024-03-01 | Days: 3",
                            "Name: 王伟 | Team: 搜索 | Start: 2023-09-15 | Days: 2"]
    assert "secret" not in document.content
    assert reason(write(tmp_path, "junk.xls", b"not a workbook " * 50)) == "corrupt XLS: Cannot detect file format"


# --- PowerPoint ------------------------------------------------------------------------------------------

DECK = [
    {"title": "Q3 results", "bullets": ["Revenue up 12%", "Churn down to 2%"], "notes": "Mention the 年假 policy"},
    {"title": "Sales by region", "table": [["Region", "Sales"], ["EU", "10"], ["CN", "20"]]},
    {"bullets": ["A slide without a title"]},
]


def test_pptx_gives_one_section_per_slide_with_its_number(tmp_path: Path) -> None:
    [doc] = read_file(write(tmp_path, "deck.pptx", make_pptx(DECK)))
    assert doc.title == "Q3 results" and doc.metadata == {"file_type": "pptx", "slides": 3}
    assert [(type(s).__name__, s.metadata, s.text) for s in doc.sections] == [
        ("Section", {"page": 1, "heading": "Q3 results"},
         "Q3 results\nRevenue up 12%\nChurn down to 2%\nNotes:\nMention the 年假 policy"),
        ("TableSection", {"page": 2, "heading": "Sales by region"},
         "Sales by region\n| Region | Sales |\n| --- | --- |\n| EU | 10 |\n| CN | 20 |"),
        ("Section", {"page": 3}, "A slide without a title"),
    ]


# --- through rag-ingest ----------------------------------------------------------------------------------


def test_rag_ingest_stores_sheet_rows_and_slides(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "office"
    folder.mkdir()
    rows = [["Code", "Description", "Owner"]] + [
        [f"P{i:03d}", f"Policy item {i}: employees submit form {i} to the people team before day {i}.", f"team {i % 5}"]
        for i in range(60)
    ]
    write(folder, "book.xlsx", make_xlsx({"Policies": rows, "Staff": STAFF}))
    write(folder, "deck.pptx", make_pptx(DECK))
    write(folder, "broken.xlsx", b"PK\x03\x04 truncated")
    write(folder, "broken.pptx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))

    result = run_cli([str(folder)], settings)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out  # the broken files failed, the others were ingested
    assert any("broken.xlsx" in line and "corrupt XLSX: not a ZIP package" in line for line in out.splitlines()), out
    assert any("broken.pptx" in line and "old binary .ppt" in line for line in out.splitlines()), out

    with MilvusStore(settings.milvus) as store:
        base = store.open(settings.kb.name)
        documents = base.documents()
        chunks = {doc_id: base.chunks(doc_id) for doc_id in documents}
    assert set(documents) == {"book.xlsx#Policies", "book.xlsx#Staff", "deck.pptx"}

    policies = chunks["book.xlsx#Policies"]
    assert len(policies) > 1  # 60 rows do not fit one chunk of 96 tokens
    stored_rows = []
    for chunk in policies:
        head, *lines = chunk["text"].split("\n")
        assert head == "Policies" and chunk["metadata"]["heading"] == "Policies" and lines
        stored_rows += lines
    expected = [f"Code: {r[0]} | Description: {r[1]} | Owner: {r[2]}" for r in rows[1:]]
    assert stored_rows == expected  # every row once, whole, with its header names, in order
    assert [c["metadata"]["page"] for c in chunks["deck.pptx"]] == [1, 2, 3]
    assert chunks["deck.pptx"][1]["text"].startswith("Sales by region\n| Region | Sales |\n| --- | --- |")


def test_a_slides_number_is_called_a_slide_in_the_cli_and_the_llms_context(
    settings: Settings, encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PowerPoint chunk's page is its slide: `rag chunks`, `rag search`'s source column, the chunk browser's
    provenance and the context given to the LLM say "slide 2" (第 2 张幻灯片), a PDF's page stays a page."""
    folder = tmp_path / "deck"
    folder.mkdir()
    write(folder, "deck.pptx", make_pptx(DECK))
    result = run_cli([str(folder)], settings)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, value in cli_env(settings).items():
        if name.startswith("RAG_") or name == "COLUMNS":
            monkeypatch.setenv(name, value)
    listed = CliRunner().invoke(app, ["chunks", "--source", "deck.pptx"])
    assert listed.exit_code == 0, listed.output
    assert "slide 2" in listed.stdout and "p.2" not in listed.stdout

    with MilvusStore(settings.milvus) as store:
        retriever = HybridRetriever.from_store(encoder, store, settings.kb.name, settings.retrieval)
        documents = retriever.invoke("Sales by region", k=3)
        [chunk] = [c for c in ChunkBrowser(store.open(settings.kb.name)).chunks(source="deck.pptx").chunks
                   if c.provenance.page == 2]
    [table] = [d for d in documents if d.metadata["page"] == 2]
    assert location(table.metadata) == "deck.pptx slide 2"  # the source column of `rag search` and `rag ask`
    assert block_label(table) == "deck.pptx (slide 2 · Sales by region)"
    assert block_label(table, "zh") == "deck.pptx (第 2 张幻灯片 · Sales by region)"
    assert chunk.provenance.page_unit == "slide"  # what the web chunk browser labels the page with
    pdf = {**table.metadata, "metadata": {**table.metadata["metadata"], "file_type": "pdf"}}
    assert block_label(type(table)(page_content="x", metadata=pdf)) == "deck.pptx (page 2 · Sales by region)"
