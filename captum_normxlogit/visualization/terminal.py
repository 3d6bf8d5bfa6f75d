r"""Signed token colours in a terminal, with ``rich``; the colour scale of the HTML page.

With colour, each example is printed as aligned columns (one per token) and
one row per method, wrapped to the terminal width. Without colour (``NO_COLOR``,
a pipe, ``--colour never``) every token is followed by its scaled score,
``gorgeous[+1.00]``, so nothing is lost.
"""

from __future__ import annotations

import io
import math
import sys
from typing import Collection, List, Optional, Sequence, TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text
from torch import Tensor

from captum_normxlogit._utils.tokens import visible_text
from captum_normxlogit.visualization.colours import hex_colour, number, scale_signed, signed_rgb, text_rgb
from captum_normxlogit.visualization.example import ExplainedExample, prepare_rows

__all__ = ["has_colour", "legend", "make_console", "print_example", "render_terminal", "token_text"]


def make_console(colour: Optional[bool] = None, file: Optional[TextIO] = None, width: Optional[int] = None) -> Console:
    r"""A ``rich`` console for these views.

    Args:
        colour (bool, optional): True forces 24-bit colour, False turns it
            off, None detects a terminal (``NO_COLOR``, ``FORCE_COLOR`` and
            ``COLORTERM`` are honoured, as ``rich`` does; a terminal with fewer
            than 256 colours gets the plain view). Default: None
        file (TextIO, optional): Where to print. Default: None (stdout)
        width (int, optional): Line width. Default: None (the terminal's, 100 otherwise)

    Returns:
        rich.console.Console
    """
    if colour is True:
        return Console(
            file=file,
            highlight=False,
            emoji=False,
            markup=False,
            width=width,
            force_terminal=True,
            color_system="truecolor",
        )
    if colour is False:
        return Console(
            file=file, highlight=False, emoji=False, markup=False, width=width, no_color=True, color_system=None
        )
    return Console(file=file, highlight=False, emoji=False, markup=False, width=width)


def has_colour(console: Console) -> bool:
    r"""Whether ``console`` can show the colour scale: 256 colours or more. With 8 or 16
    colours the scale would collapse into a few unrelated hues, so the plain view is used."""
    return console.color_system in ("256", "truecolor") and not console.no_color


def _style(value: float) -> str:
    return f"{hex_colour(text_rgb(value))} on {hex_colour(signed_rgb(value))}"


def _cell(token: str, value: float) -> str:
    r"""A coloured cell's text: the token, and for a NaN / ±inf score (grey) that value, ``b[nan]``."""
    return f" {token} " if math.isfinite(value) else f" {token}[{number(value)}] "


def token_text(tokens: Sequence[str], scaled: Sequence[float], colour: bool = True) -> Text:
    r"""Tokens on one line: coloured backgrounds, or ``token[+0.42]`` without colour.

    Args:
        tokens (sequence of str): Strings to show (made visible with
            :func:`~captum_normxlogit.visualization.tokens.visible_text`).
        scaled (sequence of float): Their scores in ``[-1, 1]``; NaN / ±inf are
            printed as ``token[nan]`` (on grey with colour).
        colour (bool, optional): Default: True

    Returns:
        rich.text.Text
    """
    if len(tokens) != len(scaled):
        raise ValueError(f"{len(tokens)} tokens but {len(scaled)} scores.")
    text = Text()
    for i, (token, value) in enumerate(zip(tokens, scaled)):
        if i:
            text.append(" ")
        token = visible_text(token)
        if colour:
            text.append(_cell(token, value), style=_style(value))
        else:
            text.append(f"{token}[{number(value)}]")
    return text


def legend(colour: bool = True) -> Text:
    r"""The colour scale in one line: −1 (against the target) to +1 (towards it)."""
    text = Text("scale: −1 against ")
    if colour:
        for v in (-1.0, -0.5, 0.0, 0.5, 1.0):
            text.append(f" {v:+.1f} ", style=_style(v))
    else:
        text.append("[-1.00 … +1.00]")
    text.append(" towards the target")
    return text


def render_terminal(
    tokens: Sequence[str],
    scores: Tensor,
    label: str = "",
    colour: Optional[bool] = None,
    stream: TextIO = sys.stdout,
) -> str:
    r"""One row as a string: ``label`` then the tokens coloured by their signed score.

    Args:
        tokens (sequence of str): Token strings.
        scores (Tensor): ``(T,)`` raw scores, scaled by their ``max |score|``.
        label (str, optional): Text printed before the tokens. Default: ""
        colour (bool, optional): Force colours on or off; None detects whether
            ``stream`` is a terminal (``NO_COLOR`` / ``FORCE_COLOR`` honoured).
            Default: None
        stream (TextIO, optional): Used only for colour detection. Default: stdout

    Returns:
        str: The line, with ANSI 24-bit colour codes, or without colour each
        token followed by ``[+0.42]``, its score scaled to ``[-1, 1]``.
    """
    scaled = scale_signed(scores.detach().float().cpu().reshape(-1)).tolist()
    if colour is None:
        colour = has_colour(make_console(None, file=stream))
    buffer = io.StringIO()
    console = make_console(colour, file=buffer, width=1_000_000)
    console.print(Text(visible_text(label)) + token_text(tokens, scaled, colour), end="", soft_wrap=True)
    return buffer.getvalue()


def _blocks(widths: Sequence[int], room: int) -> List[range]:
    blocks, start, used = [], 0, 0
    for i, w in enumerate(widths):
        if i > start and used + w + 1 > room:
            blocks.append(range(start, i))
            start, used = i, 0
        used += w + 1
    blocks.append(range(start, len(widths)))
    return blocks


def print_example(
    example: ExplainedExample,
    console: Optional[Console] = None,
    *,
    merge_words: bool = False,
    scheme: str = "auto",
    special_tokens: Collection[str] = (),
) -> None:
    r"""Print one example: its title, then one row per method over the same tokens.

    Same colour semantics as :func:`~captum_normxlogit.visualization.render_html`:
    green towards the explained target, red away, each row divided by its own
    ``max |score|`` (all rows by one divisor when ``example.shared_scale``).

    Args:
        example (ExplainedExample): What to print.
        console (rich.console.Console, optional): Default: None (:func:`make_console`)
        merge_words (bool, optional): Merge sub-words into words, summing
            their raw scores. Default: False
        scheme (str, optional): Sub-word scheme. Default: ``"auto"``
        special_tokens (collection of str, optional): Never merged. Default: ()
    """
    console = console or make_console()
    rows = prepare_rows(example, merge_words, scheme, special_tokens)
    shown, scaled = rows.shown, rows.scaled
    # soft_wrap: a title is never cut into lines by rich (a pipe would get them broken at 80 columns).
    console.print(Text(visible_text(example.title), style="bold"), soft_wrap=True)
    console.print(Text(rows.subtitle, style="dim"), soft_wrap=True)
    names = {name: visible_text(name) + (" (unsigned)" if name in example.unsigned else "") for name in scaled}
    seconds = {n: f"{example.seconds[n] * 1000:.0f} ms" for n in scaled if n in example.seconds}
    name_width = max((cell_len(n) for n in names.values()), default=0)
    if not has_colour(console):
        for name, values in scaled.items():
            line = Text(f"  {names[name]:<{name_width}}  ") + token_text(shown, values, colour=False)
            console.print(line + Text(f"  ({seconds[name]})" if name in seconds else ""), soft_wrap=True)
        console.print()
        return
    time_width = max((len(s) for s in seconds.values()), default=0)
    room = max(20, console.width - name_width - time_width - 6)
    cells = {name: [_cell(shown[i], v) for i, v in enumerate(values)] for name, values in scaled.items()}
    widths = [max(cell_len(row[i]) for row in cells.values()) for i in range(len(shown))] if cells else []
    blocks = _blocks(widths, room)
    for b, block in enumerate(blocks):
        grid = Table.grid(padding=(0, 1), pad_edge=False)
        grid.add_column(justify="right", min_width=name_width + 1)
        for _ in block:
            grid.add_column(justify="center", no_wrap=True)
        grid.add_column(style="dim")
        last = b == len(blocks) - 1
        for name, values in scaled.items():
            row = [Text(cells[name][i], style=_style(values[i])) for i in block]
            grid.add_row(Text(names[name]), *row, Text(seconds.get(name, "") if last else ""))
        console.print(grid)
    console.print()
