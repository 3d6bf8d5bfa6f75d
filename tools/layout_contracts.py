r"""Import-linter contract types for rules its own types cannot say without a list of names.

``private_modules``: a module whose name starts with one underscore (``dataset._writer``,
``resources._cache``) is private to the package that holds it: only that package and its
subpackages may import it. Import-linter's wildcards match whole names only (``pkg.*._*`` is
not a valid expression), so the built-in ``protected`` type would need every private module
listed, and a new one would go unguarded; this type finds them by name.

A private package directly under the root (``captum_normxlogit._core``) is private to the
root, so the whole package may import it.
"""

from __future__ import annotations

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _owner(module: str) -> str | None:
    r"""The package a module is private to, or None when no part of its name is private.

    The outermost private part decides: ``a.b._c.d`` is private to ``a.b``.
    """
    parts = module.split(".")
    for depth, part in enumerate(parts[1:], start=1):
        if _is_private(part):
            return ".".join(parts[:depth])
    return None


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


class PrivateModulesContract(Contract):
    r"""Private modules are imported only from inside the package that holds them.

    Configuration options:
        - packages: the root packages to check.
    """

    type_name = "private_modules"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        illegal = []
        for root in self.packages:  # type: ignore[attr-defined]
            for imported in sorted(m for m in graph.modules if _inside(m, root)):
                owner = _owner(imported)
                if owner is None:
                    continue
                for importer in sorted(graph.find_modules_that_directly_import(imported)):
                    if _inside(importer, owner):
                        continue
                    details = graph.get_import_details(importer=importer, imported=imported)
                    lines = sorted({d["line_number"] for d in details})
                    illegal.append({"importer": importer, "imported": imported, "owner": owner, "lines": lines})
        return ContractCheck(kept=not illegal, warnings=None, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for link in check.metadata["illegal"]:
            lines = ", ".join(map(str, link["lines"]))
            output.print_error(
                f"- {link['importer']} -> {link['imported']} (l.{lines}): private to {link['owner']}",
                bold=False,
            )
            output.new_line()
