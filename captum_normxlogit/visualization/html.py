r"""A standalone HTML page comparing methods over the same tokens; needs no IPython.

Layout: for each example, one row per method, with the tokens in aligned
columns (long texts wrap into several blocks, every block repeating the method
rows), so a person reads each token's column top to bottom across methods.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Collection, List, Sequence

from captum_normxlogit._utils.atomic import atomic_write_text
from captum_normxlogit._utils.tokens import visible_text
from captum_normxlogit.visualization.colours import hex_colour, number, signed_rgb, text_rgb
from captum_normxlogit.visualization.example import ExplainedExample, prepare_rows

__all__ = ["ExplainedExample", "render_html", "write_html"]


_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5rem 2rem;color:#222;max-width:78rem}
h1{font-size:1.35rem;margin:.2rem 0 .6rem} h2{font-size:1.05rem;margin:1.5rem 0 .1rem}
p.sub{margin:.1rem 0 .5rem;color:#555;font-size:.9rem} p.note{color:#555;font-size:.88rem;max-width:60rem}
table.ex{border-collapse:separate;border-spacing:2px 3px;margin:.3rem 0 .6rem}
th.m{text-align:right;font-weight:600;color:#333;white-space:nowrap;padding-right:.6rem;font-size:.92rem}
th.m small{display:block;font-weight:400;color:#888;font-size:.74rem}
td.t{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:.92rem;padding:.18rem .32rem;
  border-radius:.22rem;text-align:center;white-space:pre;cursor:default}
td.t:hover{outline:2px solid #333}
td.time{color:#777;font-size:.8rem;white-space:nowrap;padding-left:.6rem}
.legend{display:flex;align-items:center;gap:.6rem;font-size:.85rem;color:#444;margin:.3rem 0 .2rem}
.bar{width:16rem;height:.9rem;border:1px solid #999;border-radius:.2rem}
.tag{font-size:.72rem;background:#eee;color:#555;border-radius:.2rem;padding:0 .25rem;margin-left:.2rem}
"""

# Characters per wrapped block of token columns (each token counts 2 more for its padding):
# keeps a block within the page's 78rem beside the row names.
_LINE_CHARS = 96


def _legend() -> str:
    stops = ",".join(f"{hex_colour(signed_rgb(v / 4))} {50 + 12.5 * v:.1f}%" for v in range(-4, 5))
    return (
        "<div class='legend'><span>−1 · against the target</span>"
        f"<span class='bar' style='background:linear-gradient(to right,{stops})'></span>"
        "<span>+1 · towards the target</span></div>"
        "<p class='note'>Each row is divided by its own max |score| (the <i>÷</i> under its name) so that it "
        "spans −1…+1, unless a section states one divisor for all its rows. Hover a token for its raw score.</p>"
    )


def _blocks(shown: Sequence[str]) -> List[range]:
    r"""Split column indices into blocks of about ``_LINE_CHARS`` characters."""
    blocks, start, width = [], 0, 0
    for i, text in enumerate(shown):
        w = len(text) + 2
        if i > start and width + w > _LINE_CHARS:
            blocks.append(range(start, i))
            start, width = i, 0
        width += w
    blocks.append(range(start, len(shown)))
    return blocks


def _escape(text: str) -> str:
    r"""Visible (no control, bidi or zero-width character acts) and HTML-escaped."""
    return html.escape(visible_text(text))


def _example(example: ExplainedExample, merge_words: bool, scheme: str, special: Collection[str]) -> str:
    rows = prepare_rows(example, merge_words, scheme, special)
    parts = [f"<h2>{_escape(example.title)}</h2>"]
    if rows.subtitle:
        parts.append(f"<p class='sub'>{html.escape(rows.subtitle)}</p>")
    for block in _blocks(rows.shown):
        parts.append("<table class='ex'>")
        for name, raw in rows.raw.items():
            tag = "<span class='tag'>unsigned</span>" if name in example.unsigned else ""
            divisor = "" if example.shared_scale else f"<small>÷{rows.divisors[name]:.3g}</small>"
            label = f"<th class='m'>{_escape(name)}{tag}{divisor}</th>"
            cells = []
            for i in block:
                value = rows.scaled[name][i]
                shown = rows.shown[i]
                if math.isfinite(value) and example.centred:
                    centred = float(raw[i]) - rows.centres[name]
                    hover = (
                        f"{name} · {rows.pieces[i]}: raw {float(raw[i]):+.4g}, centred {centred:+.4g} "
                        f"(scaled {value:+.2f})"
                    )
                elif math.isfinite(value):
                    hover = f"{name} · {rows.pieces[i]}: {float(raw[i]):+.4g} (scaled {value:+.2f})"
                else:  # grey, and the value written in the cell: no colour can show it
                    hover = f"{name} · {rows.pieces[i]}: {number(value)} (not a finite score: no colour)"
                    shown = f"{shown}[{number(value)}]"
                style = f"background:{hex_colour(signed_rgb(value))};color:{hex_colour(text_rgb(value))}"
                cells.append(f"<td class='t' style='{style}' title='{_escape(hover)}'>{_escape(shown)}</td>")
            seconds = example.seconds.get(name)
            last_block = block[-1] == len(rows.shown) - 1  # the time goes after the row's last token
            time_cell = f"<td class='time'>{seconds * 1000:.0f} ms</td>" if seconds is not None and last_block else ""
            parts.append(f"<tr>{label}{''.join(cells)}{time_cell}</tr>")
        parts.append("</table>")
    return "\n".join(parts)


def render_html(
    examples: Sequence[ExplainedExample],
    title: str = "Token attributions",
    note: str = "",
    *,
    merge_words: bool = False,
    scheme: str = "auto",
    special_tokens: Collection[str] = (),
) -> str:
    r"""Build a complete, self-contained HTML page (no scripts, no IPython).

    Colours: green pushes towards the explained target, red away from it,
    white is 0; the legend shows the scale. Each row is divided by its own
    ``max |score|`` (stated under the row name) unless the example asks for a
    shared scale. Hovering a token shows its raw score (for merged words: the
    sum of their pieces, which are listed).

    Args:
        examples (sequence of ExplainedExample): What to show, in order.
        title (str, optional): Page title and heading. Default: "Token attributions"
        note (str, optional): A paragraph under the legend. Default: ""
        merge_words (bool, optional): Merge sub-word tokens into words, summing
            their raw scores (rule in :mod:`captum_normxlogit.visualization.tokens`).
            Default: False
        scheme (str, optional): Sub-word scheme; ``"auto"`` detects it per
            example. Default: ``"auto"``
        special_tokens (collection of str, optional): Tokens never merged and
            shown verbatim, e.g. ``tokenizer.all_special_tokens``. Default: ()

    Returns:
        str: The HTML document.
    """
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_escape(title)}</h1>",
        _legend(),
    ]
    if note:
        parts.append(f"<p class='note'>{_escape(note)}</p>")
    parts.extend(_example(example, merge_words, scheme, special_tokens) for example in examples)
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path: str, page: str) -> None:
    r"""Write ``page`` atomically: a reader never sees a half-written file."""
    atomic_write_text(Path(path), page)
