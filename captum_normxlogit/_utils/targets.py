r"""The one resolver of what an output is explained for: a class from a label name or index, a
token from an id or a one-token string, a continuation's ids.

Used by ``explain`` and by the dataset runs (``captum_normxlogit.dataset``), so a
target is read and refused by one rule with one wording; the caller names the
argument (``what``: ``"--target"``, ``"target"``, ``"foil 'answer'"``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

__all__ = ["TargetError", "continuation", "label_index", "label_of", "one_token"]


class TargetError(ValueError):
    r"""A target, foil or label value that does not name a class or token of this model."""


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
    names = ", ".join(id2label[i] for i in sorted(id2label))
    raise TargetError(
        f"{what} {value!r} is not a class of this model; its labels (config.id2label) are {names}, "
        f"or their indices 0..{n - 1}."
    )


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
