"""The house rules of the packages, read from their source with ast: no import circle, rag/ imports nothing
from the apps, only rag/store talks to pymilvus, ui/ and cli/ use ingest only through its public API, api/ sits on
rag/ alone and cli/ imports it only to start it."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rag", "ingest", "cli", "ui", "clikit", "api")


@dataclass(frozen=True)
class Import:
    importer: str  # the module that imports
    target: str  # the module imported (a package's submodule when ``from package import submodule``)
    line: int
    module_level: bool  # not inside a function (``if TYPE_CHECKING`` imports count: type checkers follow them)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(name, alias.name, child.lineno, module_level) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    found.append(Import(name, sub if sub in modules else base, child.lineno, module_level))
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, False)
            else:
                visit(child, module_level)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), True)
    return found


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    modules = project_modules()
    return [imp for name, path in modules.items() for imp in imports_of(name, path, modules)]


def _top(module: str) -> str:
    return module.split(".")[0]


def test_no_import_circle(imports: list[Import]) -> None:
    modules = project_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for imp in imports:
        if imp.module_level and imp.target in modules and imp.target != imp.importer:
            graph[imp.importer].add(imp.target)
    circles = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    assert circles == []


def test_the_circle_finder_finds_one(tmp_path: Path) -> None:
    """What the rule above reads: module-level imports, those under TYPE_CHECKING too (as client.py and
    knowledge_base.py had), relative ones resolved; an import inside a function runs late and is no circle."""
    (tmp_path / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import x\n")
    (tmp_path / "b.py").write_text("import a\ndef f():\n    import a\n")
    found = imports_of("p.a", tmp_path / "a.py", {"p.b": tmp_path}) + imports_of("b", tmp_path / "b.py", {})
    assert [(i.importer, i.target, i.module_level) for i in found] == [
        ("p.a", "typing", True), ("p.a", "p.b", True), ("b", "a", True), ("b", "a", False)]


def test_core_imports_nothing_from_the_apps(imports: list[Import]) -> None:
    wrong = [imp for imp in imports if _top(imp.importer) == "rag" and _top(imp.target) in {"ingest", "cli", "ui",
                                                                                              "clikit", "api"}]
    assert wrong == []


def test_ingest_and_clikit_do_not_import_the_other_apps(imports: list[Import]) -> None:
    wrong = [imp for imp in imports if _top(imp.importer) in {"ingest", "clikit"} and _top(imp.target) in {"cli", "ui"}]
    wrong += [imp for imp in imports if _top(imp.importer) == "clikit" and _top(imp.target) == "ingest"]
    assert wrong == []


def test_only_the_store_talks_to_pymilvus(imports: list[Import]) -> None:
    wrong = [imp for imp in imports if _top(imp.target) in {"pymilvus", "milvus_lite"}
             and not imp.importer.startswith("rag.store")]
    assert wrong == []
    for name, path in project_modules().items():
        if name.startswith("rag.store"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute):
                assert node.attr not in {"client", "_client"}, f"{name}:{node.lineno} reaches into the store"


def test_ui_and_cli_use_only_the_public_api_of_ingest(imports: list[Import]) -> None:
    import ingest

    wrong = [imp for imp in imports if _top(imp.importer) in {"ui", "cli"} and _top(imp.target) == "ingest"
             and imp.target != "ingest"]
    assert wrong == []
    names = set()
    for name in ("ui", "cli"):
        for path in sorted((ROOT / name).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module == "ingest":
                    names.update(alias.name for alias in node.names)
    assert names and names <= set(ingest.__all__)
    for name in ingest.__all__:
        assert getattr(ingest, name) is not None


def test_api_sits_on_rag_alone_and_only_rag_serve_starts_it(imports: list[Import]) -> None:
    wrong = [imp for imp in imports if _top(imp.importer) == "api" and _top(imp.target) in {"ingest", "cli", "ui",
                                                                                              "clikit"}]
    wrong += [imp for imp in imports if _top(imp.target) == "api"
              and _top(imp.importer) not in {"api", "cli"}]
    wrong += [imp for imp in imports if _top(imp.importer) == "cli" and _top(imp.target) == "api"
              and (imp.importer != "cli.serve" or imp.module_level)]
    assert wrong == []
    assert any(imp.importer == "cli.serve" and imp.target == "api.server" for imp in imports)
