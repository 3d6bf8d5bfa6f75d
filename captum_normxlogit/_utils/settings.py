r"""Settings objects beside keywords: one rule for calls that take a setting either way.

A wide call (``compare``, ``faithfulness_curves``) groups its settings into small
frozen dataclasses and still takes each setting as a keyword. A keyword left at
:data:`NOT_GIVEN` takes the group's value, else the dataclass's default (the
one place a default is written); None passed on purpose is a value like any
other. A setting given both ways, a group of the wrong class, or a required
setting given neither way is refused with a sentence.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Type, TypeVar

__all__ = ["NOT_GIVEN", "resolve_group"]

G = TypeVar("G")


class _NotGiven:
    r"""The default of a keyword that a settings group also holds: "take it from the group"."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


#: A keyword's default meaning "not given here" (the value comes from its settings group).
NOT_GIVEN: Any = _NotGiven()


def resolve_group(cls: Type[G], group: Optional[Any], argument: str, call: str, **keywords: Any) -> G:
    r"""The settings ``cls`` of one call, from the group object and/or the loose keywords.

    Args:
        cls (type): The frozen dataclass of the group.
        group (cls or None): What the caller passed as ``argument``.
        argument (str): The group's parameter name, for messages.
        call (str): The function's name, for messages.
        **keywords: The group's settings as loose keywords; :data:`NOT_GIVEN` is "not given".

    Returns:
        An instance of ``cls``.

    Raises:
        TypeError: ``group`` is not a ``cls``, or a required setting is given neither way.
        ValueError: A setting is given both as a keyword and in ``group``.
    """
    given: Dict[str, Any] = {name: value for name, value in keywords.items() if value is not NOT_GIVEN}
    if group is not None:
        if not isinstance(group, cls):
            raise TypeError(
                f"{call}: {argument}= takes a {cls.__name__}, got {type(group).__name__} "
                f"({', '.join(f.name for f in dataclasses.fields(cls))} go in it)."  # type: ignore[arg-type]
            )
        if given:
            names = ", ".join(sorted(given))
            raise ValueError(
                f"{call}: {names} given twice, as keyword{'s' if len(given) > 1 else ''} and in "
                f"{argument}={cls.__name__}(...); pass each setting once."
            )
        return group
    required = [
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in given
    ]
    if required:
        raise TypeError(
            f"{call} needs {' and '.join(required)}: pass {'them' if len(required) > 1 else 'it'} as keywords or "
            f"{argument}={cls.__name__}({', '.join(f'{name}=...' for name in required)})."
        )
    return cls(**given)
