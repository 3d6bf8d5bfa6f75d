"""The documentation build's own tools: the docstring check and the docstring rewrites."""

import dataclasses
import importlib.util
import pathlib

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


public_api = _load("_public_api")


class _Documented:
    r"""Has a docstring."""

    def method(self):
        r"""Has one too."""

    @property
    def value(self):
        r"""And this."""


class _Bare(_Documented):
    r"""Documented class whose own public members are not."""

    def method(self):  # overrides a documented method: its own docstring is still missing
        pass

    @property
    def value(self):
        return 1

    @staticmethod
    def helper():
        pass

    def _private(self):
        pass


@dataclasses.dataclass
class _NoDocDataclass:
    x: int = 0


def test_check_names_each_undocumented_member_and_only_those():
    assert public_api._undocumented_members(_Documented, "m._Documented") == []
    found = sorted(public_api._undocumented_members(_Bare, "m._Bare"))
    assert found == ["m._Bare.helper", "m._Bare.method", "m._Bare.value"]


def test_check_sees_through_generated_dataclass_docstrings():
    assert _NoDocDataclass.__doc__  # dataclasses write "Name(x: int = 0)" ...
    assert not public_api._has_own_doc(_NoDocDataclass)  # ... which is not documentation
    assert public_api._has_own_doc(_Documented)


def test_every_public_name_is_documented():
    found = public_api.undocumented()
    assert [path for path in found if path not in public_api.PENDING] == []
    assert public_api.PENDING <= set(found), "documented now: remove it from PENDING"


def test_grouped_args_become_one_entry_each():
    pytest.importorskip("griffe")
    rewrite = _load("_griffe_docstrings").split_grouped_params
    text = (
        "Summary.\n\n"
        "Args:\n"
        "    a, b (int, optional): Shared text\n"
        "        continued.\n"
        "    c: Alone.\n\n"
        "Returns:\n"
        "    x, y: not an argument list.\n"
    )
    assert rewrite(text) == (
        "Summary.\n\n"
        "Args:\n"
        "    a (int, optional): Shared text continued.\n"
        "    b (int, optional): Shared text continued.\n"
        "    c: Alone.\n\n"
        "Returns:\n"
        "    x, y: not an argument list.\n"
    )
