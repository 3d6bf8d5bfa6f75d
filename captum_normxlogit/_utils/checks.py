r"""Argument checks shared by the metrics and :func:`captum_normxlogit.compare`: each raises
a ValueError that names the argument and what to pass, before any model runs."""

from __future__ import annotations

import operator
from typing import Any, Callable, Iterable, Optional, Tuple, Union

import torch
from torch import Tensor, nn

__all__ = ["Removal", "check_removal", "check_special_ids", "class_indices", "model_vocab_size"]

# A replacement token id, or "delete" to drop the tokens.
Removal = Union[int, str]


def check_removal(removal: Removal) -> None:
    if (
        isinstance(removal, bool)
        or not isinstance(removal, (int, str))
        or (isinstance(removal, str) and removal != "delete")
    ):
        raise ValueError(
            f"removal must be a replacement token id (e.g. tokenizer.mask_token_id) or 'delete', got {removal!r}."
        )
    if isinstance(removal, int) and removal < 0:
        raise ValueError(
            f"removal id {removal} is negative; pass a token id of the model's vocabulary "
            "(e.g. tokenizer.mask_token_id) or 'delete'."
        )


def check_special_ids(special_token_ids: Optional[Iterable[Any]]) -> Tuple[int, ...]:
    r"""``special_token_ids`` as a tuple of ints, or a ValueError that says what to pass."""
    hint = "e.g. (tokenizer.cls_token_id,) as the paper, or () to let every token go"
    if special_token_ids is None or isinstance(special_token_ids, (str, bytes)):
        raise ValueError(f"special_token_ids must be a sequence of token ids ({hint}), got {special_token_ids!r}.")
    try:
        items = list(special_token_ids)
    except TypeError:
        raise ValueError(
            f"special_token_ids must be a sequence of token ids ({hint}), got {type(special_token_ids).__name__}."
        ) from None
    ids = []
    for item in items:
        try:
            if isinstance(item, bool):
                raise TypeError
            ids.append(operator.index(item))
        except TypeError:
            raise ValueError(
                f"special_token_ids must be a sequence of token ids ({hint}), but it holds {item!r}"
                + (" (a tokenizer without that special token gives None: leave it out)." if item is None else ".")
            ) from None
    return tuple(ids)


def class_indices(name: str, value: Any, n: int) -> Tensor:
    r"""``(n,)`` long class indices from ``value``; floats and bools are refused, not truncated."""
    indices = torch.as_tensor(value).reshape(-1)
    if indices.dtype == torch.bool or indices.is_floating_point() or indices.is_complex():
        shown = indices.tolist()[:8]
        raise ValueError(
            f"{name} must hold integer class indices, got {indices.dtype} values {shown}; pass a long tensor "
            "(floats would be truncated to another class)."
        )
    if indices.numel() != n:
        raise ValueError(f"{name} must hold one entry per example ({n}), got {indices.numel()}.")
    return indices.cpu().long()


def model_vocab_size(forward_func: Callable[..., Any]) -> Optional[int]:
    r"""The input vocabulary size of the model behind ``forward_func`` when it can be seen
    (``NormXLogit(model).forward_func``, ``LLMNormXLogit``'s, or a Hugging Face model itself)."""
    owner = getattr(forward_func, "__self__", forward_func)
    candidates = (getattr(getattr(owner, "adapter", None), "model", None), getattr(owner, "model", None), owner)
    for model in candidates:
        if isinstance(model, nn.Module) and hasattr(model, "get_input_embeddings"):
            try:
                embeddings = model.get_input_embeddings()  # type: ignore[operator]  # HF method: hasattr above
            except (AttributeError, NotImplementedError):
                continue
            if isinstance(embeddings, nn.Embedding):
                return int(embeddings.num_embeddings)
    return None
