r"""Plausibility: how well token attributions agree with human (or by-construction) evidence.

Every function takes any Captum-shaped attribution, ``(B, T)`` as NormXLogit
returns it or ``(B, T, H)`` from a gradient method together with an explicit
``reduction``, and a binary evidence mask, and returns one value per example,
``(B,)`` float64, as ``captum.metrics`` does. Positions where
``attention_mask`` is 0 (padding) and positions in ``exclude`` (for example
the masked target of the paper's BLiMP protocol) never count: they are dropped
before ranking or normalising. Higher is better for every metric.
"""

from __future__ import annotations

from typing import Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from captum_normxlogit.metrics._removal import token_scores

__all__ = ["average_precision", "auprc", "dot_product", "token_f1"]

Positions = Union[Tensor, Sequence[Sequence[int]]]
_NORMALIZATIONS = ("softmax", "sum", "none")


# ----------------------------------------------------------------------------- validation
def _scores(attributions: Union[Tensor, Tuple[Tensor, ...]], reduction: Optional[str]) -> Tensor:
    r"""``(B, T)`` float64 scores from a Captum-shaped attribution (shared with the faithfulness metrics)."""
    return token_scores(attributions, reduction)


def _mask(name: str, value: Optional[Positions], shape: Tuple[int, int], default: bool) -> Tensor:
    r"""A ``(B, T)`` bool mask from a 0/1 or bool tensor, or from a list of position lists."""
    if value is None:
        return torch.full(shape, default, dtype=torch.bool)
    if isinstance(value, Tensor):
        if tuple(value.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(value.shape)} but the attributions need {shape} (B, T).")
        if value.dtype != torch.bool and not bool(((value == 0) | (value == 1)).all()):
            raise ValueError(f"{name} must be a bool tensor or hold only 0 and 1.")
        return value.detach().to("cpu").bool()
    rows = list(value)
    if len(rows) != shape[0]:
        raise ValueError(f"{name} lists positions for {len(rows)} examples, but the batch has {shape[0]}.")
    out = torch.zeros(shape, dtype=torch.bool)
    for b, row in enumerate(rows):
        for position in row:
            if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < shape[1]:
                raise ValueError(f"{name}[{b}] holds position {position!r}; positions must be ints in [0, {shape[1]}).")
            out[b, position] = True
    return out


def _examples(
    attributions: Union[Tensor, Tuple[Tensor, ...]],
    evidence: Positions,
    attention_mask: Optional[Tensor],
    exclude: Optional[Positions],
    reduction: Optional[str],
) -> Iterator[Tuple[Tensor, Tensor]]:
    r"""Validate everything first, then yield ``(scores, is_evidence)`` of the counted positions per example."""
    scores = _scores(attributions, reduction)
    shape = (scores.shape[0], scores.shape[1])
    is_evidence = _mask("evidence", evidence, shape, default=False)
    if attention_mask is not None and not isinstance(attention_mask, Tensor):
        raise TypeError(f"attention_mask must be a (B, T) torch.Tensor, got {type(attention_mask).__name__}.")
    counted = _mask("attention_mask", attention_mask, shape, default=True)
    counted &= ~_mask("exclude", exclude, shape, default=False)
    for b in range(shape[0]):
        stray = (is_evidence[b] & ~counted[b]).nonzero().flatten().tolist()
        if stray:
            raise ValueError(
                f"example {b}: evidence positions {stray} are padding or excluded, so they can never be found; "
                "fix the evidence or the attention_mask / exclude arguments."
            )
        if not bool(is_evidence[b].any()):
            raise ValueError(
                f"example {b} has no evidence position: plausibility is undefined without evidence; "
                "drop the example or give it at least one evidence position."
            )
    return ((scores[b][counted[b]], is_evidence[b][counted[b]]) for b in range(shape[0]))


def _pr_points(scores: Tensor, positive: Tensor) -> Tuple[Tensor, Tensor]:
    r"""Precision and recall at every distinct score threshold, highest first.

    Tied scores enter the ranking together (one threshold), so the result does
    not depend on how a sort breaks ties.
    """
    order = torch.argsort(scores, descending=True, stable=True)
    scores, positive = scores[order], positive[order].double()
    true_pos = torch.cumsum(positive, 0)
    # the last index of each run of equal scores closes one threshold
    last = torch.ones_like(scores, dtype=torch.bool)
    last[:-1] = scores[1:] != scores[:-1]
    taken = torch.arange(1, len(scores) + 1, dtype=torch.float64)[last]
    true_pos = true_pos[last]
    return true_pos / taken, true_pos / positive.sum()


def _stack(values: List[float]) -> Tensor:
    return torch.tensor(values, dtype=torch.float64)


# ----------------------------------------------------------------------------- metrics
def average_precision(
    attributions: Union[Tensor, Tuple[Tensor, ...]],
    evidence: Positions,
    *,
    attention_mask: Optional[Tensor] = None,
    exclude: Optional[Positions] = None,
    reduction: Optional[str] = None,
) -> Tensor:
    r"""Average precision of the token ranking against the evidence tokens.

    Tokens are ranked by their signed score, highest first (the paper's
    convention: strongly negative tokens come last), and with ``P_k`` and
    ``R_k`` the precision and recall among the tokens scoring at least the
    ``k``-th highest distinct score::

        AP = sum_k (R_k - R_{k-1}) * P_k,    R_0 = 0

    the paper's definition (and scikit-learn's): 1 when every evidence token
    outranks every other token; about the evidence share for a random ranking.
    Tied tokens enter the ranking together.

    Args:
        attributions (Tensor or tuple[Tensor]): ``(B, T)`` token scores, or
            ``(B, T, H)`` with ``reduction``.
        evidence (Tensor or list[list[int]]): ``(B, T)`` bool or 0/1 mask of
            the evidence tokens, or each example's evidence positions. Every
            example needs at least one evidence position that counts.
        attention_mask (Tensor, optional): ``(B, T)``, 0 at padding, which is
            dropped. Default: None (no padding)
        exclude (Tensor or list[list[int]], optional): positions that never
            count either, like the masked target in the paper's BLiMP protocol.
            Default: None
        reduction (str, optional): ``"sum"``, ``"l1"`` or ``"l2"``, required for
            ``(B, T, H)`` attributions and refused for ``(B, T)``. Default: None

    Returns:
        *Tensor* of shape ``(B,)``, float64, in ``(0, 1]``; higher is better.
    """
    values = []
    for scores, positive in _examples(attributions, evidence, attention_mask, exclude, reduction):
        precision, recall = _pr_points(scores, positive)
        previous = torch.cat([recall.new_zeros(1), recall[:-1]])
        values.append(float(((recall - previous) * precision).sum()))
    return _stack(values)


def auprc(
    attributions: Union[Tensor, Tuple[Tensor, ...]],
    evidence: Positions,
    *,
    attention_mask: Optional[Tensor] = None,
    exclude: Optional[Positions] = None,
    reduction: Optional[str] = None,
) -> Tensor:
    r"""Area under the precision-recall curve (ERASER's soft-score AUPRC).

    The curve runs through ``(recall 0, precision 1)`` and then the point
    ``(R_k, P_k)`` of every distinct score threshold, highest first (tied
    tokens enter together); the area is taken with the trapezoidal rule, as
    ``sklearn.metrics.auc(recall, precision)`` does in ERASER. Unlike
    :func:`average_precision` it interpolates linearly between points, so it is
    a little more generous to rankings that find evidence late.

    Args:
        attributions, evidence, attention_mask, exclude, reduction: As in
            :func:`average_precision`.

    Returns:
        *Tensor* of shape ``(B,)``, float64, in ``(0, 1]``; higher is better.
    """
    values = []
    for scores, positive in _examples(attributions, evidence, attention_mask, exclude, reduction):
        precision, recall = _pr_points(scores, positive)
        precision = torch.cat([precision.new_ones(1), precision])
        recall = torch.cat([recall.new_zeros(1), recall])
        values.append(float(torch.trapezoid(precision, recall)))
    return _stack(values)


def dot_product(
    attributions: Union[Tensor, Tuple[Tensor, ...]],
    evidence: Positions,
    *,
    normalize: str = "softmax",
    attention_mask: Optional[Tensor] = None,
    exclude: Optional[Positions] = None,
    reduction: Optional[str] = None,
) -> Tensor:
    r"""The paper's Dot Product: the share of normalised attribution on the evidence.

    ``DP = E . S``, where ``E`` is 1 at evidence tokens and ``S`` are the
    counted tokens' scores normalised over the example. With several evidence
    tokens their shares add up. The paper normalises NormXLogit, LogAt and the
    norm with a softmax of the signed scores and the (non-negative)
    context-mixing scores by their sum; a uniform ``S`` (the paper's random
    baseline) gives ``|E| / n``. A softmax depends on the scores' scale, so
    softmax DPs of methods with different scales do not compare directly;
    :func:`average_precision` does not have this problem.

    Args:
        attributions, evidence, attention_mask, exclude, reduction: As in
            :func:`average_precision`.
        normalize (str, optional): ``"softmax"`` (any sign), ``"sum"`` (scores
            must be non-negative with a positive sum, e.g. ``reduction="l1"``)
            or ``"none"`` (raw scores summed over the evidence).
            Default: ``"softmax"``

    Returns:
        *Tensor* of shape ``(B,)``, float64; in ``(0, 1]`` when normalised.
        Higher is better.
    """
    if normalize not in _NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {_NORMALIZATIONS}, got {normalize!r}.")
    examples = list(_examples(attributions, evidence, attention_mask, exclude, reduction))
    values = []
    for b, (scores, positive) in enumerate(examples):
        if normalize == "softmax":
            scores = torch.softmax(scores, 0)
        elif normalize == "sum":
            if bool((scores < 0).any()) or float(scores.sum()) <= 0:
                raise ValueError(
                    f"example {b}: normalize='sum' needs non-negative scores with a positive sum, got values in "
                    f"[{float(scores.min()):.4g}, {float(scores.max()):.4g}]; use normalize='softmax' for signed "
                    "scores, or an unsigned reduction ('l1', 'l2')."
                )
            scores = scores / scores.sum()
        values.append(float(scores[positive].sum()))
    return _stack(values)


def token_f1(
    attributions: Union[Tensor, Tuple[Tensor, ...]],
    evidence: Positions,
    *,
    k: Optional[int] = None,
    threshold: Optional[float] = None,
    attention_mask: Optional[Tensor] = None,
    exclude: Optional[Positions] = None,
    reduction: Optional[str] = None,
) -> Tensor:
    r"""Token F1 between a hard rationale read off the scores and the evidence (ERASER).

    The rationale is the ``k`` highest-scoring counted tokens (ties broken by
    position, earliest first), or every token scoring above ``threshold``;
    with neither, ``k`` is each example's number of evidence tokens (then
    precision, recall and F1 coincide). ``F1 = 2 |R & E| / (|R| + |E|)``,
    0 for an empty rationale.

    Args:
        attributions, evidence, attention_mask, exclude, reduction: As in
            :func:`average_precision`.
        k (int, optional): Rationale size; capped at the number of counted
            tokens. Default: None
        threshold (float, optional): Keep tokens scoring strictly above it
            (after ``reduction``). Give ``k`` or ``threshold``, not both.
            Default: None

    Returns:
        *Tensor* of shape ``(B,)``, float64, in ``[0, 1]``; higher is better.
    """
    if k is not None and threshold is not None:
        raise ValueError("token_f1 takes k or threshold, not both.")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"k must be a positive int, got {k!r}.")
    values = []
    for scores, positive in _examples(attributions, evidence, attention_mask, exclude, reduction):
        if threshold is not None:
            chosen = scores > threshold
        else:
            size = min(k if k is not None else int(positive.sum()), len(scores))
            chosen = torch.zeros_like(positive)
            chosen[torch.argsort(scores, descending=True, stable=True)[:size]] = True
        hits = int((chosen & positive).sum())
        values.append(2.0 * hits / (int(chosen.sum()) + int(positive.sum())))
    return _stack(values)
