r"""Feed Captum's own ``visualize_text`` correctly."""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from captum.attr import visualization as captum_viz
from torch import Tensor

__all__ = ["scale_signed", "to_visualization_records"]


def scale_signed(scores: Tensor) -> Tensor:
    r"""Divide by the largest absolute score so values lie in ``[-1, 1]``.

    Captum's colours clip to ``[-1, 1]`` and NormXLogit's scale is arbitrary;
    dividing by ``max |score|`` keeps the sign and the ratios. All-zero rows stay 0.

    Args:
        scores (Tensor): ``(T,)`` or ``(B, T)`` scores; rows are scaled separately.

    Returns:
        *Tensor* of the same shape.
    """
    top = scores.abs().amax(dim=-1, keepdim=True)
    return torch.where(top > 0, scores / top.clamp_min(torch.finfo(scores.dtype).tiny), torch.zeros_like(scores))


def to_visualization_records(
    attributions: Tensor,
    tokens: Sequence[Sequence[str]],
    probabilities: Tensor,
    predicted: Sequence[str],
    true_labels: Optional[Sequence[str]] = None,
    attributed: Optional[Sequence[str]] = None,
    attention_mask: Optional[Tensor] = None,
) -> List[captum_viz.VisualizationDataRecord]:
    r"""One ``VisualizationDataRecord`` per example, scaled for ``visualize_text``.

    Args:
        attributions (Tensor): ``(B, T)`` token scores (NormXLogit, or a
            gradient method after ``reduce_hidden``).
        tokens (sequence of sequence of str): Token strings per example.
        probabilities (Tensor): ``(B,)`` probability of the predicted class.
        predicted (sequence of str): Predicted label per example.
        true_labels (sequence of str, optional): Gold labels. Default: None ("")
        attributed (sequence of str, optional): The label explained. Default:
            None (the predicted label)
        attention_mask (Tensor, optional): ``(B, T)``; pad positions are dropped.
            Default: None

    Returns:
        list of ``VisualizationDataRecord``: word attributions scaled by
        :func:`scale_signed`; ``attr_score`` holds the raw sum.
    """
    records = []
    for b, row in enumerate(attributions.detach().float().cpu()):
        keep = attention_mask[b].bool().cpu() if attention_mask is not None else torch.ones_like(row, dtype=torch.bool)
        row = row[keep]
        words = [t for t, k in zip(tokens[b], keep.tolist()) if k]
        if len(words) != row.numel():
            raise ValueError(f"Example {b} has {len(words)} tokens but {row.numel()} scores.")
        records.append(
            captum_viz.VisualizationDataRecord(
                scale_signed(row),
                float(probabilities[b]),
                predicted[b],
                true_labels[b] if true_labels is not None else "",
                attributed[b] if attributed is not None else predicted[b],
                float(row.sum()),
                words,
                None,
            )
        )
    return records
