r"""A standalone HTML page comparing methods over the same tokens; needs no IPython."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence

from torch import Tensor

from captum_normxlogit.resources._cache import atomic_write_text
from captum_normxlogit.visualization.records import scale_signed

__all__ = ["ExplainedExample", "render_html", "write_html"]


@dataclass
class ExplainedExample:
    r"""One input explained by several methods.

    Args:
        title (str): Heading, e.g. the prediction.
        tokens (list of str): Token strings.
        scores (dict of str to Tensor): Method name to ``(T,)`` scores.
        seconds (dict of str to float, optional): Method name to wall time.
    """

    title: str
    tokens: List[str]
    scores: Dict[str, Tensor]
    seconds: Dict[str, float] = field(default_factory=dict)


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#222;max-width:70rem}
h1{font-size:1.4rem} h2{font-size:1.05rem;margin:1.6rem 0 .4rem}
table{border-collapse:collapse} td{padding:.25rem .5rem;vertical-align:middle}
td.method{font-weight:600;white-space:nowrap;color:#444} td.time{color:#777;font-size:.85rem;white-space:nowrap}
span.tok{display:inline-block;padding:.1rem .25rem;margin:.08rem;border-radius:.2rem;font-family:ui-monospace,monospace}
.legend span{display:inline-block;padding:.1rem .5rem;font-family:ui-monospace,monospace}
p.note{color:#555;font-size:.9rem}
"""


def _colour(value: float) -> str:
    strength = min(abs(value), 1.0)
    hue = 130 if value >= 0 else 0
    return f"hsl({hue},75%,{100 - 50 * strength:.0f}%)"


def render_html(examples: Sequence[ExplainedExample], title: str = "Token attributions", note: str = "") -> str:
    r"""Build the page: one table per example, one row per method.

    Colours: green pushes towards the explained label, red away; each row is
    scaled by its own ``max |score|`` (stated on the page); hovering a token
    shows its raw score.

    Returns:
        str: A complete HTML document.
    """
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<div class='legend'>Scale (each row divided by its max |score|): "
        + "".join(f"<span style='background:{_colour(v)}'>{v:+.1f}</span>" for v in (-1, -0.5, 0, 0.5, 1))
        + "</div>",
    ]
    if note:
        parts.append(f"<p class='note'>{html.escape(note)}</p>")
    for example in examples:
        parts.append(f"<h2>{html.escape(example.title)}</h2><table>")
        for method, scores in example.scores.items():
            raw = scores.detach().float().cpu()
            if raw.numel() != len(example.tokens):
                raise ValueError(f"{method}: {raw.numel()} scores for {len(example.tokens)} tokens.")
            cells = "".join(
                f"<span class='tok' style='background:{_colour(v)}' title='{html.escape(method)}: {r:+.4g}'>"
                f"{html.escape(tok)}</span>"
                for tok, v, r in zip(example.tokens, scale_signed(raw).tolist(), raw.tolist())
            )
            seconds = example.seconds.get(method)
            time_cell = f"{seconds * 1000:.0f} ms" if seconds is not None else ""
            parts.append(
                f"<tr><td class='method'>{html.escape(method)}</td><td>{cells}</td>"
                f"<td class='time'>{time_cell}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path: str, page: str) -> None:
    r"""Write ``page`` atomically: a reader never sees a half-written file."""
    atomic_write_text(Path(path), page)
