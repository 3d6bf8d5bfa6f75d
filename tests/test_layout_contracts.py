"""The import-linter contract type of tools/layout_contracts.py (``make lint``'s private-module rule).

Checked on a small package written to tmp_path, so the cases are the rule's own and do not depend on
the state of captum_normxlogit's imports.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")
pytest.importorskip("importlinter")

from tools.layout_contracts import PrivateModulesContract, _owner  # noqa: E402


def _write(root: Path, files: dict) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def graph_of(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))

    def build(files: dict):
        _write(tmp_path, {"pkg/__init__.py": "", **files})
        try:
            return grimp.build_graph("pkg", cache_dir=None)
        finally:
            for name in [m for m in sys.modules if m == "pkg" or m.startswith("pkg.")]:
                del sys.modules[name]

    return build


def _check(graph):
    contract = PrivateModulesContract("private", session_options={}, contract_options={"packages": ["pkg"]})
    return contract.check(graph, verbose=False)


def test_owner_is_the_package_above_the_outermost_private_part():
    assert _owner("pkg.dataset._writer") == "pkg.dataset"
    assert _owner("pkg._core.llm") == "pkg"  # a private package under the root is the root's
    assert _owner("pkg.a._b._c") == "pkg.a"
    assert _owner("pkg.dataset.api") is None
    assert _owner("pkg.__main__") is None  # dunder names are not private


def test_imports_inside_the_owning_package_are_kept(graph_of):
    graph = graph_of(
        {
            "pkg/_core/__init__.py": "",
            "pkg/_core/llm.py": "",
            "pkg/dataset/__init__.py": "from pkg.dataset._writer import write\n",
            "pkg/dataset/_writer.py": "def write(): pass\n",
            "pkg/dataset/sub/__init__.py": "from pkg.dataset import _writer\n",
            "pkg/views.py": "import pkg._core.llm\nfrom pkg.dataset import write\n",
        }
    )
    check = _check(graph)
    assert check.kept, check.metadata


def test_a_private_module_imported_from_outside_its_package_breaks_it(graph_of):
    graph = graph_of(
        {
            "pkg/resources/__init__.py": "",
            "pkg/resources/_cache.py": "def atomic(): pass\n",
            "pkg/views.py": "x = 1\nfrom pkg.resources._cache import atomic\n",
        }
    )
    check = _check(graph)
    assert not check.kept
    assert check.metadata["illegal"] == [
        {"importer": "pkg.views", "imported": "pkg.resources._cache", "owner": "pkg.resources", "lines": [2]}
    ]
