r"""The public API the documentation covers, and the check that all of it has docstrings.

``python docs/_public_api.py`` (run by ``make docs`` before ``mkdocs build --strict``) imports
every public module (see :func:`public_modules`), walks each name of its ``__all__`` and exits
with status 1, naming each one, if a public module, class, function, method or property has no
docstring of its own. mkdocstrings renders such a name with an empty body and does not warn, so
without this check the strict build would pass on an undocumented public name.

Data (``SCHEMA``, ``METHOD_KEYS`` ...) carries no docstring at run time and is not checked.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

PACKAGE = "captum_normxlogit"
# Known gaps tolerated with a note while a file is rewritten; the check fails once one of them is
# documented or gone, so that the list only shrinks. Empty: every public name is documented.
PENDING: frozenset[str] = frozenset()


def public_modules() -> list[str]:
    r"""The modules whose ``__all__`` the API reference documents, top level first.

    Returns:
        list[str]: Dotted names: ``captum_normxlogit``, then each sub-module or sub-package
        whose name has no leading underscore and that declares ``__all__``, sorted.
    """
    package = importlib.import_module(PACKAGE)
    names = [PACKAGE]
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{PACKAGE}.{info.name}")
        if hasattr(module, "__all__"):
            names.append(module.__name__)
    return names


def _has_own_doc(obj: object) -> bool:
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    if not doc or not doc.strip():
        return False
    # dataclasses and NamedTuples write "Name(field, ...)" when the class has no docstring.
    generated = isinstance(obj, type) and doc.startswith(f"{obj.__name__}(")
    return not (generated and (dataclasses.is_dataclass(obj) or issubclass(obj, tuple)))


def _undocumented_members(cls: type, path: str) -> list[str]:
    missing = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property):
            target = value.fget
        elif inspect.isfunction(value):
            target = value
        else:
            continue  # fields and constants: documented in the class's Attributes section
        if not _has_own_doc(target):
            missing.append(f"{path}.{name}")
    return missing


def undocumented() -> list[str]:
    r"""Every public name without a docstring of its own.

    Returns:
        list[str]: Dotted paths as users write them (``captum_normxlogit.NormXLogit.attribute``),
        in module order; empty when everything is documented.
    """
    missing = []
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        if not _has_own_doc(module):
            missing.append(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            path = f"{module_name}.{name}"
            if inspect.ismodule(obj) or inspect.isclass(obj) or callable(obj):
                if not _has_own_doc(obj):
                    missing.append(path)
            if inspect.isclass(obj):
                missing += _undocumented_members(obj, path)
    return missing


def main() -> int:
    r"""Print the undocumented public names.

    Returns:
        int: 0 when every public name outside :data:`PENDING` has a docstring and every
        name of :data:`PENDING` still lacks one, else 1.
    """
    found = undocumented()
    missing = [path for path in found if path not in PENDING]
    stale = sorted(PENDING - set(found))
    if missing:
        print(f"{len(missing)} public name(s) without a docstring (add a raw-string Google-style one):")
        for path in missing:
            print(f"  {path}")
    if stale:
        print("documented or gone now, remove from PENDING in docs/_public_api.py:")
        for path in stale:
            print(f"  {path}")
    if missing or stale:
        return 1
    pending = f" (still pending: {', '.join(sorted(PENDING))})" if PENDING else ""
    print(f"every public name of {', '.join(public_modules())} has a docstring{pending}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
