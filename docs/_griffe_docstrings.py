r"""Griffe extension for the API pages: the docstrings' house conventions, read by griffe.

* Sphinx roles (``:func:`compare```, ``:class:`NormXLogit```) and double backticks, as in
  ``captum.attr``, become Markdown inline code (Markdown would show the role markers).
* Several parameters documented on one line (``inputs, target: As in :meth:`attribute`.``)
  become one entry each, with the same description, so that griffe's Google parser matches
  every entry to the signature (and still warns, failing the strict build, on a real mismatch).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|mod|data|obj|exc):`~?([^`]+)`")
DOUBLE = re.compile(r"``([^`]+)``")
SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Keyword Args|Other Parameters):\s*$")
GROUPED = re.compile(
    r"^(?P<indent>\s+)(?P<names>\*{0,2}\w+(?:,\s*\*{0,2}\w+)+)(?P<type>\s*\([^)]*\))?:\s*(?P<text>.*)$"
)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def split_grouped_params(text: str) -> str:
    r"""One ``Args:`` entry per parameter where a line documents several.

    Args:
        text (str): A Google-style docstring.

    Returns:
        str: The same docstring; ``a, b (type): text`` (and its continuation lines)
        is repeated as ``a (type): text`` and ``b (type): text``.
    """
    lines = text.splitlines()
    out: list[str] = []
    in_args, args_indent, i = False, 0, 0
    while i < len(lines):
        line = lines[i]
        section = SECTION.match(line)
        if section:
            in_args, args_indent = True, len(section.group(1))
        elif line.strip() and _indent(line) <= (args_indent if in_args else -1):
            in_args = False
        match = GROUPED.match(line) if in_args and not section else None
        if not match:
            out.append(line)
            i += 1
            continue
        entry_indent = len(match.group("indent"))
        description = [match.group("text").strip()]
        i += 1
        while i < len(lines) and lines[i].strip() and _indent(lines[i]) > entry_indent:
            description.append(lines[i].strip())
            i += 1
        for name in re.split(r",\s*", match.group("names")):
            out.append(f"{match.group('indent')}{name}{match.group('type') or ''}: {' '.join(description)}")
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


class HouseDocstrings(griffe.Extension):
    r"""Apply the rewrites above to every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        r"""Rewrite the docstring of one object.

        Args:
            obj (griffe.Object): The object griffe just loaded.
            **kwargs (Any): Griffe's other event arguments (unused).
        """
        if obj.docstring is not None:
            text = split_grouped_params(obj.docstring.value)
            text = ROLE.sub(lambda m: f"`{m.group(1)}`", text)
            obj.docstring.value = DOUBLE.sub(lambda m: f"`{m.group(1)}`", text)
