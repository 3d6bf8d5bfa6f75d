r"""Bring gradient attributions ``(B, T, H)`` to NormXLogit's per-token shape ``(B, T)``."""

from __future__ import annotations

from torch import Tensor

__all__ = ["reduce_hidden"]

_REDUCTIONS = ("sum", "l1", "l2")


def reduce_hidden(attributions: Tensor, reduction: str = "sum") -> Tensor:
    r"""Reduce per-dimension attributions to one score per token.

    Args:
        attributions (Tensor): ``(B, T, H)`` scores, e.g. from
            ``IntegratedGradients`` on ``inputs_embeds``.
        reduction (str, optional): ``"sum"`` (signed, Captum's LLM convention),
            ``"l1"`` (unsigned, what the NormXLogit authors used for their
            gradient baselines) or ``"l2"`` (unsigned). Default: ``"sum"``

    Returns:
        *Tensor* of shape ``(B, T)``.
    """
    if attributions.dim() != 3:
        raise ValueError(f"reduce_hidden expects (batch, seq_len, hidden), got shape {tuple(attributions.shape)}.")
    if reduction == "sum":
        return attributions.sum(-1)
    if reduction == "l1":
        return attributions.abs().sum(-1)
    if reduction == "l2":
        return attributions.norm(dim=-1)
    raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}.")
