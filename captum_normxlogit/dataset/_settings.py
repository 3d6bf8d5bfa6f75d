r""":class:`DatasetSettings`: every setting of :func:`attribute_dataset`, in one frozen object.

One source for each value: the run reads the task's arguments from it
(:meth:`DatasetSettings.task_arguments`) and the manifest is written from it
(:meth:`DatasetSettings.row_settings` for what changes a row and is
fingerprinted, :meth:`DatasetSettings.run_settings` for what does not), so a
setting cannot be passed to one and recorded differently in the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Optional, Sequence, Union

__all__ = ["DatasetSettings", "ON_ERROR"]

ON_ERROR = ("raise", "skip")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")


@dataclass(frozen=True)
class DatasetSettings:
    r"""The settings of one :func:`attribute_dataset` run (see its docstring for each one's meaning).

    Build it once and pass it as ``settings=``; or pass the same names as
    keywords, which build one. :meth:`replace` gives a copy with some changed.

    Args:
        text_column (str, optional): Default: ``"text"``
        pair_column (str, optional): Default: None
        label_column (str, optional): Default: None
        target (optional): Default: None (the prediction)
        foil (optional): Default: None
        layers (None, "all", int or list of int, optional): Default: None
        max_length (int, optional): Default: None
        truncation (bool, optional): Default: False
        shard_size (int, optional): Default: 1024
        max_tokens_per_batch (int, optional): Default: 8192
        resume (bool, optional): Default: True
        on_error (str, optional): Default: ``"raise"``
        progress (bool, optional): Default: True
        limit (int, optional): Default: None

    Raises:
        ValueError: A value of the wrong kind (checked when the object is made).
    """

    text_column: str = "text"
    pair_column: Optional[str] = None
    label_column: Optional[str] = None
    target: Any = None
    foil: Any = None
    layers: Union[None, str, int, Sequence[int]] = None
    max_length: Optional[int] = None
    truncation: bool = False
    shard_size: int = 1024
    max_tokens_per_batch: int = 8192
    resume: bool = True
    on_error: str = "raise"
    progress: bool = True
    limit: Optional[int] = None

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {self.on_error!r}.")
        _positive_int("shard_size", self.shard_size)
        _positive_int("max_tokens_per_batch", self.max_tokens_per_batch)
        limit = self.limit
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be None or a non-negative int, got {limit!r}.")
        if isinstance(self.layers, list):  # frozen and hashable: a list is kept as a tuple
            object.__setattr__(self, "layers", tuple(self.layers))

    @classmethod
    def names(cls) -> tuple:
        r"""The setting names, in order (the keywords :func:`attribute_dataset` takes for them)."""
        return tuple(f.name for f in fields(cls))

    def replace(self, **changes: Any) -> "DatasetSettings":
        r"""A copy with ``changes`` applied (checked again)."""
        return DatasetSettings(**{**asdict(self), **changes})

    def task_arguments(self) -> Dict[str, Any]:
        r"""The keywords of the row explainer (``dataset._explainer.RowExplainer``)."""
        layers = list(self.layers) if isinstance(self.layers, tuple) else self.layers
        return {
            "text_column": self.text_column,
            "pair_column": self.pair_column,
            "label_column": self.label_column,
            "target": self.target,
            "foil": self.foil,
            "layers": layers,
            "max_length": self.max_length,
            "truncation": self.truncation,
        }

    def row_settings(self, task: Any) -> Dict[str, Any]:
        r"""The manifest's ``settings``: what changes a row (fingerprinted), as the task resolved it.

        Args:
            task: The row explainer built from :meth:`task_arguments` (its
                resolved target, layers and token limit are recorded).
        """
        from captum_normxlogit.dataset import _targets
        from captum_normxlogit.dataset._manifest import manifest_task_name

        return {
            "task": manifest_task_name(task.task, task.is_regression),
            "text_column": self.text_column,
            "pair_column": self.pair_column,
            "label_column": self.label_column,
            "target": _targets.describe_spec(task.target),
            "foil": _targets.describe_spec(task.foil),
            "layers": task.layers or None,
            "max_length": self.max_length,
            "limit_tokens": task.limit,
            "truncation": task.truncation,
            "shard_size": self.shard_size,
        }

    def run_settings(self, world_size: int) -> Dict[str, Any]:
        r"""The manifest's ``run``: settings that change no finished row (recorded, not fingerprinted)."""
        return {
            "on_error": self.on_error,
            "max_tokens_per_batch": self.max_tokens_per_batch,
            "limit": self.limit,
            "world_size": world_size,
        }
