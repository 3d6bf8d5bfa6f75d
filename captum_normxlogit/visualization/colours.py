r"""One signed colour scale for every view: red (against) — white (0) — green (towards).

The HTML page, the terminal and the layer heatmap all take their colours from
here, so the same value has the same colour everywhere. Hues follow Captum's
``visualize_text`` (green positive, red negative).
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import Tensor

__all__ = [
    "MISSING_RGB",
    "NEGATIVE_RGB",
    "POSITIVE_RGB",
    "ZERO_RGB",
    "finite_max",
    "hex_colour",
    "number",
    "scale_signed",
    "signed_rgb",
    "text_rgb",
]

RGB = Tuple[int, int, int]

NEGATIVE_RGB: RGB = (215, 48, 39)  # -1: pushes away from the explained target
ZERO_RGB: RGB = (255, 255, 255)  # 0: no evidence either way
POSITIVE_RGB: RGB = (26, 152, 80)  # +1: pushes towards the explained target
MISSING_RGB: RGB = (158, 158, 158)  # NaN / ±inf: no place on the scale (grey is on neither side of it)


def finite_max(scores: Tensor) -> float:
    r"""The largest ``|score|`` among the finite scores (0.0 when there is none): the
    divisor of a row, so that one NaN or infinite score cannot blank its neighbours."""
    finite = scores[torch.isfinite(scores)]
    return float(finite.abs().max()) if finite.numel() else 0.0


def number(value: float) -> str:
    r"""A scaled score as the views print it: ``+0.42``, or ``nan`` / ``+inf`` / ``-inf``."""
    if math.isnan(value):
        return "nan"
    return f"{value:+.2f}" if math.isfinite(value) else ("+inf" if value > 0 else "-inf")


def scale_signed(scores: Tensor) -> Tensor:
    r"""Divide by the largest absolute score so values lie in ``[-1, 1]``.

    NormXLogit's scale is arbitrary (a logit times a norm) and Captum's colours
    clip to ``[-1, 1]``; dividing by ``max |score|`` keeps the sign and the
    ratios between tokens. All-zero rows stay 0. The maximum is taken over the
    finite scores only, and NaN / ±inf scores are returned as they are, so the
    views can flag them while every other score of the row keeps its value.

    Args:
        scores (Tensor): ``(T,)`` or ``(B, T)`` scores; rows are scaled separately.

    Returns:
        *Tensor* of the same shape: finite scores in ``[-1, 1]``, NaN / ±inf unchanged.
    """
    finite = torch.isfinite(scores)
    top = torch.where(finite, scores.abs(), torch.zeros_like(scores)).amax(dim=-1, keepdim=True)
    scaled = torch.where(top > 0, scores / top.clamp_min(torch.finfo(scores.dtype).tiny), torch.zeros_like(scores))
    return torch.where(finite, scaled, scores)


def signed_rgb(value: float) -> RGB:
    r"""The background colour of a scaled score.

    Args:
        value (float): A score in ``[-1, 1]`` (clipped outside).

    Returns:
        *tuple of int*: ``(r, g, b)``, linear from white at 0 to green at +1
        or red at -1; :data:`MISSING_RGB` (grey) for NaN or ±inf, which have
        no place on the scale.
    """
    if not math.isfinite(value):
        return MISSING_RGB
    value = max(-1.0, min(1.0, float(value)))
    end = POSITIVE_RGB if value >= 0 else NEGATIVE_RGB
    strength = abs(value)
    return tuple(round(z + (e - z) * strength) for z, e in zip(ZERO_RGB, end))  # type: ignore[return-value]


def text_rgb(value: float) -> RGB:
    r"""Dark text on light backgrounds, white text on strong ones (readable contrast)."""
    value = float(value) if math.isfinite(value) else 0.0
    return (255, 255, 255) if abs(value) > 0.6 else (17, 17, 17)


def hex_colour(rgb: RGB) -> str:
    r"""``(r, g, b)`` as ``"#rrggbb"`` (CSS and rich both read it)."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)
