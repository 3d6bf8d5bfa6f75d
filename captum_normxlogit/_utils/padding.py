r"""
Padding: one way to build a padded batch, one definition of "right-padded",
one pad-token fallback.

Every place that turns lists of token ids into a ``(B, T)`` batch (the
LLM teacher-forced pass and ``generate``, the dataset tasks and ablations,
the experiments) calls :func:`pad_batch`; every check of the padding side
(encoders reject left padding, :func:`~captum_normxlogit.compare` wants right
padding, deletion closes gaps away from the padding) calls
:func:`is_right_padded`; every tokenizer without a pad token falls back to its
EOS token through :func:`pad_token_id_or_eos`.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = ["PaddingSide", "is_right_padded", "pad_batch", "pad_token_id_or_eos"]

PaddingSide = Literal["left", "right"]
Row = Union[Sequence[int], Tensor]


def pad_batch(
    rows: Sequence[Row],
    pad_id: int,
    *,
    side: PaddingSide = "right",
    width: Optional[int] = None,
) -> Tuple[Tensor, Tensor]:
    r"""
    Stacks token-id rows of different lengths into one padded batch.

    Args:
        rows (sequence of sequences of int or 1-D Tensors): ``B`` rows, at
            least one.
        pad_id (int): Fills the padding slots of ``ids``.
        side (str, optional): ``"right"`` puts the real tokens first (encoders,
            classifiers), ``"left"`` last (decoders that continue the text).
            Default: ``"right"``
        width (int, optional): ``T``; at least the longest row. Default: None
            (the longest row)

    Returns:
        ``(ids, mask)``: *Tensor* ``(B, T)`` int64 each, on the CPU; ``mask`` is
        1 at real tokens and 0 at padding.
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}.")
    if len(rows) == 0:
        raise ValueError("pad_batch needs at least one row.")
    tensors = [torch.as_tensor(row, dtype=torch.long).flatten() for row in rows]
    longest = max(t.numel() for t in tensors)
    width = longest if width is None else int(width)
    if width < longest:
        raise ValueError(f"width {width} is shorter than the longest row ({longest} tokens).")
    ids = torch.full((len(tensors), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, t in enumerate(tensors):
        n = t.numel()
        start = 0 if side == "right" else width - n
        ids[b, start : start + n] = t
        mask[b, start : start + n] = 1
    return ids, mask


def is_right_padded(attention_mask: Tensor) -> Tensor:
    r"""
    Whether each row is right-padded: no real token comes after a pad (rows
    without padding, and rows of padding only, count as right-padded).

    Args:
        attention_mask (Tensor): ``(B, T)``, nonzero at real tokens.

    Returns:
        *Tensor* ``(B,)`` bool.
    """
    real = attention_mask != 0
    return ~(real[:, 1:] & ~real[:, :-1]).any(-1)


def pad_token_id_or_eos(tokenizer: Any) -> Optional[int]:
    r"""
    The id that pads a batch for ``tokenizer``: its pad token, else its EOS
    token (decoder tokenizers often have no pad token), else None.

    Args:
        tokenizer (transformers tokenizer or any object with
            ``pad_token_id`` / ``eos_token_id``): The model's tokenizer.

    Returns:
        int or None.
    """
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None:
        pad = getattr(tokenizer, "eos_token_id", None)
    return pad
