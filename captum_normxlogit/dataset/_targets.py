r"""What each example is explained for: targets, foils and gold labels, fixed or read from a column.

A fixed target is checked once, before anything runs (a bad one is a
configuration error); a value read from a column is checked per row (a bad
one is a row error, handled by ``on_error``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from captum_normxlogit._utils.targets import TargetError, continuation, label_index, label_of, one_token

__all__ = [
    "Column",
    "TargetError",
    "column",
    "continuation",
    "describe_spec",
    "label_index",
    "label_of",
    "one_token",
    "parse_spec",
]


@dataclass(frozen=True)
class Column:
    r"""Read a value per example from the column ``name`` (see :func:`column`)."""

    name: str


def column(name: str) -> Column:
    r"""Mark a ``target=`` or ``foil=`` as "read it from this column of the data".

    Args:
        name (str): The column, e.g. the gold label's.

    Returns:
        Column

    Example::

        >>> attribute_dataset(model, tokenizer, data, "out", target=column("label"))
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"column() takes a column name, got {name!r}.")
    return Column(name)


Spec = Union[None, int, str, Column]


def parse_spec(value: Any, what: str) -> Spec:
    r"""Check the form of a ``target`` / ``foil`` argument (CLI strings ``column:NAME`` become columns)."""
    if value is None or isinstance(value, Column):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TargetError(f"{what} must be None, an int, a label/token string or column(name); got {value!r}.")
    if isinstance(value, str) and value.startswith("column:"):
        return Column(value[len("column:") :])
    return value


def describe_spec(spec: Spec) -> Any:
    r"""A JSON-able form of a spec, for the manifest."""
    return {"column": spec.name} if isinstance(spec, Column) else spec
