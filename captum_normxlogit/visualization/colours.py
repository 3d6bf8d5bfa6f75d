r"""One signed colour scale for every view: red (against) — white (0) — green (towards).

The HTML page, the terminal and the layer heatmap all take their colours from
here, so the same value has the same colour everywhere. Hues follow Captum's
``visualize_text`` (green positive, red negative).
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

__all__ = ["NEGATIVE_RGB", "POSITIVE_RGB", "ZERO_RGB", "hex_colour", "scale_signed", "signed_rgb", "text_rgb"]

RGB = Tuple[int, int, int]

NEGATIVE_RGB: RGB = (215, 48, 39)  # -1: pushes away from the explained target
ZERO_RGB: RGB = (255, 255, 255)  # 0: no evidence either way
POSITIVE_RGB: RGB = (26, 152, 80)  # +1: pushes towards the explained target


def scale_signed(scores: Tensor) -> Tensor:
    r"""Divide by the largest absolute score so values lie in ``[-1, 1]``.

    NormXLogit's scale is arbitrary (a logit times a norm) and Captum's colours
    clip to ``[-1, 1]``; dividing by ``max |score|`` keeps the sign and the
    ratios between tokens. All-zero rows stay 0.

    Args:
        scores (Tensor): ``(T,)`` or ``(B, T)`` scores; rows are scaled separately.

    Returns:
        *Tensor* of the same shape, in ``[-1, 1]``.
    """
    top = scores.abs().amax(dim=-1, keepdim=True)
    return torch.where(top > 0, scores / top.clamp_min(torch.finfo(scores.dtype).tiny), torch.zeros_like(scores))


def signed_rgb(value: float) -> RGB:
    r"""The background colour of a scaled score.

    Args:
        value (float): A score in ``[-1, 1]`` (clipped outside; NaN counts as 0).

    Returns:
        *tuple of int*: ``(r, g, b)``, linear from white at 0 to green at +1
        or red at -1.
    """
    value = 0.0 if value != value else max(-1.0, min(1.0, float(value)))
    end = POSITIVE_RGB if value >= 0 else NEGATIVE_RGB
    strength = abs(value)
    return tuple(round(z + (e - z) * strength) for z, e in zip(ZERO_RGB, end))  # type: ignore[return-value]


def text_rgb(value: float) -> RGB:
    r"""Dark text on light backgrounds, white text on strong ones (readable contrast)."""
    value = 0.0 if value != value else float(value)
    return (255, 255, 255) if abs(value) > 0.6 else (17, 17, 17)


def hex_colour(rgb: RGB) -> str:
    r"""``(r, g, b)`` as ``"#rrggbb"`` (CSS and rich both read it)."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)
