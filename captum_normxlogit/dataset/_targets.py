r"""What each example is explained for: targets, foils and gold labels, fixed or read from a column.

A fixed target is checked once, before anything runs (a bad one is a
configuration error); a value read from a column is checked per row (a bad
one is a row error, handled by ``on_error``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

__all__ = ["Column", "TargetError", "column", "describe_spec", "label_index", "one_token", "parse_spec"]


class TargetError(ValueError):
    r"""A target, foil or label value that does not name a class or token of this model."""


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


def label_index(id2label: Dict[int, str], value: Any, what: str) -> int:
    r"""Class index of a classifier from an int, a digit string or a label name (exact, then case-blind)."""
    n = len(id2label)
    if isinstance(value, bool):
        raise TargetError(f"{what} {value!r} is a bool; pass a class index or a label name.")
    if isinstance(value, int) or (hasattr(value, "__index__") and not isinstance(value, str)):
        index = int(value)
        if not 0 <= index < n:
            raise TargetError(f"{what} {index} out of range: the model has classes 0..{n - 1}.")
        return index
    if isinstance(value, str):
        for same in (lambda a, b: a == b, lambda a, b: a.lower() == b.lower()):
            hits = [i for i, name in id2label.items() if same(name, value)]
            if len(hits) == 1:
                return hits[0]
        if value.strip().lstrip("-").isdigit():
            return label_index(id2label, int(value), what)
    names = ", ".join(f"{i}={id2label[i]}" for i in sorted(id2label))
    raise TargetError(f"{what} {value!r} is not a class of this model (config.id2label: {names}).")


def one_token(tokenizer: Any, vocab: int, value: Any, what: str) -> int:
    r"""A vocabulary id from an int or a string that encodes to exactly one token."""
    if isinstance(value, bool):
        raise TargetError(f"{what} {value!r} is a bool; pass a token id or a one-token string.")
    if isinstance(value, int) or (hasattr(value, "__index__") and not isinstance(value, str)):
        index = int(value)
        if not 0 <= index < vocab:
            raise TargetError(f"{what} {index} out of range: the vocabulary has ids 0..{vocab - 1}.")
        return index
    if isinstance(value, str):
        ids = tokenizer.encode(value, add_special_tokens=False)
        if len(ids) == 1:
            return int(ids[0])
        raise TargetError(
            f"{what} {value!r} is {len(ids)} tokens {tokenizer.convert_ids_to_tokens(ids)}; "
            "it must be exactly one token (a word after a space usually needs its leading space)."
        )
    raise TargetError(f"{what} {value!r} is a {type(value).__name__}; pass a token id or a one-token string.")


def continuation(tokenizer: Any, vocab: int, value: Any, what: str) -> List[int]:
    r"""Token ids of a teacher-forced continuation (a string, encoded without special tokens)."""
    if not isinstance(value, str):
        raise TargetError(f"{what} {value!r} is a {type(value).__name__}; a causal LM's continuation is a string.")
    ids = [int(i) for i in tokenizer.encode(value, add_special_tokens=False)]
    if not ids:
        raise TargetError(f"{what} {value!r} encodes to no token; give a non-empty continuation.")
    return ids


def label_of(id2label: Optional[Dict[int, str]], value: Any) -> Optional[int]:
    r"""Class index of a gold label when it names one, else None (a label is kept as given either way)."""
    if id2label is None or value is None:
        return None
    try:
        return label_index(id2label, value, "label")
    except TargetError:
        return None
