r"""Small facts about a model NormXLogit runs: what wraps it, where its logits are, how long its inputs may be."""

from __future__ import annotations

from typing import Any, Optional, Tuple

from torch import Tensor, nn

__all__ = ["input_limit", "logits_of", "position_limit", "too_long_error", "unwrap_model"]

_POSITION_LIMITS = ("max_position_embeddings", "n_positions", "n_ctx")
_NO_LIMIT = 1_000_000  # tokenizers without a limit report a huge sentinel (1e30)


def unwrap_model(model: nn.Module) -> nn.Module:
    r"""The module inside ``nn.DataParallel`` / ``DistributedDataParallel`` / ``torch.compile`` wrappers.

    NormXLogit hooks the model's own blocks and reads its own head, so it runs the wrapped module
    itself: on its own device (no data parallelism) and eagerly (not compiled). The results are
    the same; only the wrapper's speed-up is not used.
    """
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif type(model).__name__ == "OptimizedModule" and isinstance(
            inner := getattr(model, "_orig_mod", None), nn.Module
        ):
            model = inner  # torch.compile's wrapper
        else:
            return model


def logits_of(output: Any) -> Tensor:
    r"""``logits`` of a model output, also for models configured with ``return_dict=False`` (a tuple)."""
    logits = getattr(output, "logits", None)
    if logits is None and isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        logits = output[0]  # without labels the tuple starts with the logits
    if not isinstance(logits, Tensor):
        raise TypeError(
            f"The model returned {type(output).__name__}, with no logits to read; NormXLogit needs a task model "
            "whose output has .logits (or a tuple starting with them)."
        )
    return logits


def position_limit(model: nn.Module) -> Optional[Tuple[str, int]]:
    r"""``(config field, size)`` of the model's position table, or None when its config names none."""
    config = getattr(model, "config", None)
    name = next((k for k in _POSITION_LIMITS if isinstance(getattr(config, k, None), int)), None)
    return None if name is None else (name, int(getattr(config, name)))


def input_limit(model: nn.Module, tokenizer: Any = None, max_length: Optional[int] = None) -> int:
    r"""The one input-length rule: the longest input (in tokens) a model is given.

    The least of the tokenizer's ``model_max_length``, the model's position table
    (:func:`position_limit`) and ``max_length``; those that are unset (or the
    tokenizers' huge "no limit" sentinel) do not count.

    Args:
        model (nn.Module): The model (its ``config``).
        tokenizer (optional): Its tokenizer. Default: None
        max_length (int, optional): A limit of the caller's, at least 1. Default: None

    Returns:
        int
    """
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}.")
    table = position_limit(model)
    limits = [
        int(getattr(tokenizer, "model_max_length", _NO_LIMIT) or _NO_LIMIT),
        table[1] if table is not None and table[1] > 0 else _NO_LIMIT,
    ]
    if max_length is not None:
        limits.append(int(max_length))
    return min(limit for limit in limits if limit > 0)


def too_long_error(model: nn.Module, length: int) -> Optional[ValueError]:
    r"""The sentence for a forward pass that failed on an input as long as the position table, else None.

    Written only after the model failed: rotary and relative-position models run longer inputs,
    so nothing is refused up front.
    """
    table = position_limit(model)
    if table is None:
        return None
    name, limit = table
    if length <= limit - 2:  # some families (RoBERTa: padding_idx + 1) start their positions past 0
        return None
    return ValueError(
        f"The input is {length} tokens long, but {type(model).__name__} has a position table of {limit} "
        f"(config.{name}) and failed on it; truncate the input, e.g. tokenizer(..., truncation=True) "
        "(tokenizer.model_max_length tokens)."
    )
