r"""One explained input (:class:`ExplainedExample`) and the rows every view draws from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Dict, List

import torch
from torch import Tensor

from captum_normxlogit._utils.tokens import (
    detect_scheme,
    display_token,
    merge_subwords,
    visible_text,
    word_groups,
)
from captum_normxlogit.visualization.colours import finite_max

__all__ = ["ExplainedExample", "Rows", "prepare_rows"]


@dataclass
class ExplainedExample:
    r"""One input explained by several methods (or at several layers).

    Args:
        title (str): Heading, e.g. the prediction.
        tokens (list of str): ``T`` token strings as the tokenizer gives them
            (``convert_ids_to_tokens``), pads already removed.
        scores (dict of str to Tensor): Row name (method, layer) to ``(T,)``
            raw scores; rows are shown in this order.
        seconds (dict of str to float, optional): Row name to wall time.
            Default: empty
        subtitle (str, optional): A line under the title, e.g. what target
            was explained. Default: ""
        unsigned (collection of str, optional): Rows whose scores are
            magnitudes without a direction (e.g. Saliency); flagged on the page.
            Default: empty
        shared_scale (bool, optional): Scale every row by the largest
            ``|score|`` of all rows (for layer-wise rows that must be
            comparable) instead of each row by its own. Default: False
        centred (bool, optional): Colour each row by its scores minus the
            row's mean over the non-special columns (what the dataset summary
            ranks by; NormXLogit's raw last-layer scores are mostly positive, so
            raw colours are nearly uniform); the raw score stays on hover.
            Default: False
    """

    title: str
    tokens: List[str]
    scores: Dict[str, Tensor]
    seconds: Dict[str, float] = field(default_factory=dict)
    subtitle: str = ""
    unsigned: Collection[str] = ()
    shared_scale: bool = False
    centred: bool = False


@dataclass
class Rows:
    r"""What the HTML page and the terminal show for one example.

    Attributes:
        shown (list of str): Column strings (readable tokens, or merged words).
        pieces (list of str): Per column, the original tokens (``"un + ##bel"`` for a merged word).
        raw (dict of str to Tensor): Row name to ``(columns,)`` raw scores (merged words summed).
        scaled (dict of str to list of float): Row name to scores in ``[-1, 1]``;
            a NaN / ±inf raw score stays NaN / ±inf (the views grey it and print it).
        divisors (dict of str to float): Row name to the divisor used (its own
            ``max |score|`` over its finite scores, or the shared one).
        subtitle (str): The example's subtitle plus the scaling it states.
        centres (dict of str to float): Row name to the mean subtracted before scaling
            (0 unless the example is ``centred``).
    """

    shown: List[str]
    pieces: List[str]
    raw: Dict[str, Tensor]
    scaled: Dict[str, List[float]]
    divisors: Dict[str, float]
    subtitle: str
    centres: Dict[str, float] = field(default_factory=dict)


def prepare_rows(
    example: ExplainedExample, merge_words: bool = False, scheme: str = "auto", special_tokens: Collection[str] = ()
) -> Rows:
    r"""Readable columns and scaled rows of ``example``, the same for every view.

    Args:
        example (ExplainedExample): The input and its rows.
        merge_words (bool, optional): Merge sub-words into words, summing raw scores. Default: False
        scheme (str, optional): Sub-word scheme; ``"auto"`` detects it from the tokens. Default: ``"auto"``
        special_tokens (collection of str, optional): Never merged, shown verbatim. Default: ()

    Returns:
        Rows
    """
    tokens = example.tokens
    for name, row in example.scores.items():
        if row.numel() != len(tokens):
            raise ValueError(f"{name}: {row.numel()} scores for {len(tokens)} tokens.")
    scheme = detect_scheme(tokens) if scheme == "auto" else scheme
    raw = {name: row.detach().float().cpu().reshape(-1) for name, row in example.scores.items()}
    if merge_words:
        shown = merge_subwords(tokens, torch.zeros(len(tokens)), scheme, special_tokens)[0]
        raw = {name: merge_subwords(tokens, row, scheme, special_tokens)[1] for name, row in raw.items()}
        pieces = [" + ".join(tokens[i] for i in group) for group in word_groups(tokens, scheme, special_tokens)]
    else:
        shown = [display_token(t, scheme, special_tokens) for t in tokens]
        pieces = list(tokens)
    pieces = [visible_text(p) for p in pieces]  # the hover text shows the raw tokens: never raw controls
    centres = {name: 0.0 for name in raw}
    if example.centred:  # the mean over the finite, non-special columns
        regular = torch.tensor([t not in special_tokens for t in shown], dtype=torch.bool)
        for name, row in raw.items():
            keep = torch.isfinite(row) & regular
            centres[name] = float(row[keep].mean()) if bool(keep.any()) else 0.0
    values = {name: row - centres[name] for name, row in raw.items()}
    # Divisors over the finite scores: one NaN must not turn a whole row into NaN (or into zeros).
    shared = max((finite_max(r) for r in values.values()), default=0.0)
    divisors = {name: shared if example.shared_scale else finite_max(row) for name, row in values.items()}
    scaled = {}
    for name, row in values.items():
        finite = torch.isfinite(row)
        by = divisors[name] if divisors[name] > 0 else float("inf")  # an all-zero row stays 0
        scaled[name] = torch.where(finite, row / by, row).tolist()
    stated = f"every row ÷{shared:.3g}" if example.shared_scale else "each row ÷ its max |score|"
    if example.centred:
        stated = "centred on each row's mean, " + stated.replace("|score|", "|centred score|")
    subtitle = visible_text("; ".join(p for p in (example.subtitle, stated) if p))
    return Rows(shown, pieces, raw, scaled, divisors, subtitle, centres)
