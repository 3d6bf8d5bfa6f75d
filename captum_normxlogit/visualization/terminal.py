r"""Signed token colours for a terminal (ANSI 24-bit), no extra dependency."""
from __future__ import annotations

import os
import sys
from typing import Optional, Sequence, TextIO

from torch import Tensor

from captum_normxlogit.visualization.records import scale_signed

__all__ = ["render_terminal"]


def _supports_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)()) or bool(os.environ.get("FORCE_COLOR"))


def _paint(token: str, value: float) -> str:
    # Green for positive, red for negative, intensity = |value|; dark text stays readable.
    strength = min(abs(value), 1.0)
    base = (255, 255, 255)
    tint = (0, 170, 60) if value >= 0 else (210, 30, 30)
    r, g, b = (round(c + (t - c) * strength) for c, t in zip(base, tint))
    fg = "38;2;255;255;255" if strength > 0.55 else "38;2;20;20;20"
    return f"\x1b[48;2;{r};{g};{b}m\x1b[{fg}m{token}\x1b[0m"


def render_terminal(
    tokens: Sequence[str],
    scores: Tensor,
    label: str = "",
    colour: Optional[bool] = None,
    stream: TextIO = sys.stdout,
) -> str:
    r"""Tokens on one line, coloured by their signed score.

    Args:
        tokens (sequence of str): Token strings.
        scores (Tensor): ``(T,)`` scores, scaled by ``max |score|`` for colour.
        label (str, optional): Text printed before the tokens. Default: ""
        colour (bool, optional): Force colours on or off; None detects a
            terminal (``NO_COLOR`` / ``FORCE_COLOR`` are honoured). Default: None
        stream (TextIO, optional): Used only for colour detection. Default: stdout

    Returns:
        str: The line; without colour each token is followed by ``[+0.42]``,
        its score scaled to ``[-1, 1]``.
    """
    scaled = scale_signed(scores.detach().float().cpu()).tolist()
    if len(tokens) != len(scaled):
        raise ValueError(f"{len(tokens)} tokens but {len(scaled)} scores.")
    use_colour = _supports_colour(stream) if colour is None else colour
    if use_colour:
        body = " ".join(_paint(t, v) for t, v in zip(tokens, scaled))
    else:
        body = " ".join(f"{t}[{v:+.2f}]" for t, v in zip(tokens, scaled))
    return f"{label}{body}"
