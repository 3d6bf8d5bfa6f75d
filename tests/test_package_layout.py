"""Whole-package layout rules that import-linter's contracts do not say: no import circle anywhere
in the package, no study code inside it, and studies, benchmarks and tutorials that import only public
names (import-linter sees only the package itself)."""

from __future__ import annotations

import ast
import importlib
import json
import re
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

grimp = pytest.importorskip("grimp")

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "captum_normxlogit"
# The package's runnable entry points; any other `if __name__ == "__main__"` is a script (a study) in the wheel.
ENTRY_POINTS = {"captum_normxlogit/__main__.py", "captum_normxlogit/cli.py", "captum_normxlogit/resources/__main__.py"}


def cycles(imports: Dict[str, Set[str]]) -> List[List[str]]:
    r"""The strongly connected components with more than one module (Tarjan, iterative)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []
    for start in sorted(imports):
        if start in index:
            continue
        work = [(start, iter(sorted(imports[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(imports.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_circle_through_three_modules_and_none_in_a_chain():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_package_has_no_import_circle():
    # Every import counts, also those inside functions and under TYPE_CHECKING: a circle hidden in a
    # function is still two modules that cannot be understood (or moved) one without the other.
    graph = grimp.build_graph("captum_normxlogit", cache_dir=None)
    imports = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert cycles(imports) == []


def test_the_package_holds_no_study_code():
    modules = [p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")]
    assert not [m for m in modules if "_experiments" in m or "studies" in m]
    main_block = re.compile(r"^if __name__ == .__main__.:", re.M)
    scripts = [
        m for m in modules if m not in ENTRY_POINTS and main_block.search((ROOT / m).read_text(encoding="utf-8"))
    ]
    assert scripts == [], "a runnable script inside the package: studies go to studies/ (CONTRIBUTING.md)"


def _source(path: Path) -> str:
    r"""A script's text, or a notebook's code cells (IPython's ``%``/``!`` lines left out)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        return text
    cells = [c["source"] for c in json.loads(text)["cells"] if c["cell_type"] == "code"]
    lines = [line for cell in cells for line in ("".join(cell) if isinstance(cell, list) else cell).splitlines()]
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def _study_imports(path: Path):
    for node in ast.walk(ast.parse(_source(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno


@pytest.mark.parametrize("path", sorted((ROOT / "studies").glob("*.py")), ids=lambda p: p.name)
def test_a_study_imports_only_public_names(path):
    bad = _private_imports(path)
    assert bad == [], f"{path.name} imports names that are not public: {bad}"


USER_CODE = sorted(
    [*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "tutorials").glob("*.py"), *(ROOT / "tutorials").glob("*.ipynb")]
)
# The exceptions, named one by one: scripts whose subject is an internal itself. The memory probe ("an
# investigation aid, not a benchmark") patches the readers' chunk sizes; bench_row_count times the
# progress bar's private row counter; the RSS driver switches steady_memory's settings off one at a time to
# measure each one's effect. A benchmark of what a user runs may not join this list.
INTERNALS_PROBED = {
    "benchmarks/_bench_rss.py": {"captum_normxlogit._utils"},
    "benchmarks/probe_dataset_memory.py": {"captum_normxlogit.dataset._sources"},
    "benchmarks/bench_row_count.py": {"captum_normxlogit.dataset._progress", "captum_normxlogit.dataset._sources"},
}


@pytest.mark.parametrize("path", USER_CODE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_benchmark_or_tutorial_imports_only_public_names(path):
    # Benchmarks and tutorials show what a user can run: the package's public names only.
    allowed = INTERNALS_PROBED.get(path.relative_to(ROOT).as_posix(), set())
    bad = [entry for entry in _private_imports(path) if entry.split(": ", 1)[1] not in allowed]
    assert bad == [], f"{path.relative_to(ROOT)} imports names that are not public: {bad}"


def test_the_public_name_check_catches_a_private_module_and_a_private_or_unexported_name(tmp_path):
    script = tmp_path / "bench_x.py"
    script.write_text(
        "from captum_normxlogit._utils.memory import peak_above\n"
        "from captum_normxlogit.dataset import _batching\n"
        "from captum_normxlogit.utils import pad_batch, os\n"
        "import captum_normxlogit.resources._cache\n",
        encoding="utf-8",
    )
    assert _private_imports(script) == [
        "l.1: captum_normxlogit._utils.memory",
        "l.2: captum_normxlogit.dataset._batching",
        "l.3: captum_normxlogit.utils.os",
        "l.4: captum_normxlogit.resources._cache",
    ]
    notebook = tmp_path / "t.ipynb"
    cells = [
        {"cell_type": "code", "source": ["%matplotlib inline\n", "from captum_normxlogit.utils import pad_batch"]},
        {"cell_type": "markdown", "source": ["from captum_normxlogit._core import x"]},
        {"cell_type": "code", "source": "from captum_normxlogit._utils.padding import pad_batch"},
    ]
    notebook.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    assert _private_imports(notebook) == ["l.3: captum_normxlogit._utils.padding"]


def _private_imports(path: Path) -> List[str]:
    bad = []
    for module, names, line in _study_imports(path):
        top = module.split(".")[0]
        if top not in ("captum_normxlogit", "studies"):
            continue
        if any(part.startswith("_") for part in module.split(".")):
            bad.append(f"l.{line}: {module}")
            continue
        exported = getattr(importlib.import_module(module), "__all__", None)
        for name in names:
            if name.startswith("_") or (exported is not None and name not in exported and not _is_module(module, name)):
                bad.append(f"l.{line}: {module}.{name}")
    return bad


def _is_module(package: str, name: str) -> bool:
    return f"{package}.{name}" in sys.modules or (ROOT / package.replace(".", "/") / f"{name}.py").exists()


def test_the_package_is_typed_and_its_licence_file_matches_the_declared_licence():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert (PACKAGE / "py.typed").is_file()
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["captum_normxlogit"]
    assert project["project"]["license"] == "BSD-3-Clause"  # an SPDX expression, not the deprecated table
    assert project["project"]["license-files"] == ["LICENSE"]
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("BSD 3-Clause License") and "Neither the name of the copyright holder" in licence
