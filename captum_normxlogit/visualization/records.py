r"""Feed Captum's own ``visualize_text`` correctly: scaled scores, escaped tokens, labels."""

from __future__ import annotations

import html
import math
from typing import Collection, List, Optional, Sequence, Union

import torch
from captum.attr import visualization as captum_viz
from torch import Tensor

from captum_normxlogit._utils.tokens import detect_scheme, display_token, merge_subwords, visible_text
from captum_normxlogit.visualization.colours import finite_max, number, scale_signed

__all__ = ["scale_signed", "to_visualization_records"]


def _label(value: Union[str, int], names: Optional[dict]) -> str:
    if names is not None and not isinstance(value, str):
        value = names.get(int(value), value)
    return visible_text(str(value))


def to_visualization_records(
    attributions: Tensor,
    tokens: Sequence[Sequence[str]],
    probabilities: Tensor,
    predicted: Sequence[Union[str, int]],
    true_labels: Optional[Sequence[Union[str, int]]] = None,
    attributed: Optional[Sequence[Union[str, int]]] = None,
    attention_mask: Optional[Tensor] = None,
    *,
    method: Optional[str] = None,
    id2label: Optional[dict] = None,
    merge_words: bool = False,
    scheme: str = "auto",
    special_tokens: Collection[str] = (),
) -> List[captum_viz.VisualizationDataRecord]:
    r"""One ``VisualizationDataRecord`` per example, ready for ``visualize_text``.

    Captum colours ``word_attributions`` on a fixed ``[-1, 1]`` scale and
    clips outside it, while NormXLogit's (and IG's) raw scores are unbounded.
    Each example's scores are therefore divided by that example's own
    ``max |score|`` (sign and ratios kept; see :func:`scale_signed`), and the
    divisor is **stated** in the "Attribution Label" column as
    ``"<label> · <method> · ÷<max|score|>"``. The "Attribution Score" column
    holds the raw (unscaled) sum of the scores, as in Captum's tutorials.
    Token strings are HTML-escaped (``visualize_text`` inserts them verbatim,
    so a token such as ``<b>`` would otherwise break the table) and made
    readable (byte-level ``Ġ`` decoded, ``▁`` dropped).

    Args:
        attributions (Tensor): ``(B, T)`` token scores, signed (NormXLogit, or
            a gradient method after ``reduce_hidden``).
        tokens (sequence of sequence of str): Token strings per example, as
            ``tokenizer.convert_ids_to_tokens`` gives them.
        probabilities (Tensor): ``(B,)`` probability of the predicted class.
        predicted (sequence of str or int): Predicted label per example; ints
            are named through ``id2label``.
        true_labels (sequence of str or int, optional): Gold labels. Default:
            None (shown as ``""``)
        attributed (sequence of str or int, optional): The label explained.
            Default: None (the predicted label)
        attention_mask (Tensor, optional): ``(B, T)``; pad positions are dropped.
            Default: None
        method (str, optional): Method name written into the attribution
            label, so records of several methods can share one table. Default: None
        id2label (dict, optional): ``model.config.id2label``. Default: None
        merge_words (bool, optional): Merge sub-word tokens into words and sum
            their raw scores before scaling (rule in
            :mod:`captum_normxlogit.visualization.tokens`). Default: False
        scheme (str, optional): Sub-word scheme for merging and display.
            Default: ``"auto"``
        special_tokens (collection of str, optional): Never merged, e.g.
            ``tokenizer.all_special_tokens``. Default: ()

    Returns:
        list of ``VisualizationDataRecord``: ``word_attributions`` in
        ``[-1, 1]`` (positive = towards the attributed label, as Captum
        colours green); ``raw_input_ids`` the escaped token (or word) strings.
    """
    attributions = attributions.detach().float().cpu()
    if attributions.dim() != 2:
        raise ValueError(f"attributions must be (B, T), got {tuple(attributions.shape)}; reduce (B, T, H) first.")
    batch = attributions.shape[0]
    for name, value in (
        ("tokens", tokens),
        ("probabilities", probabilities),
        ("predicted", predicted),
        ("true_labels", true_labels),
        ("attributed", attributed),
    ):
        if value is not None and len(value) != batch:
            raise ValueError(f"{name} has {len(value)} entries for {batch} examples; pass one per example.")
    records = []
    for b, row in enumerate(attributions):
        keep = attention_mask[b].bool().cpu() if attention_mask is not None else torch.ones_like(row, dtype=torch.bool)
        row = row[keep]
        words = [t for t, k in zip(tokens[b], keep.tolist()) if k]
        if len(words) != row.numel():
            raise ValueError(f"Example {b} has {len(words)} tokens but {row.numel()} scores.")
        example_scheme = detect_scheme(words) if scheme == "auto" else scheme
        if merge_words:
            words, row = merge_subwords(words, row, example_scheme, special_tokens)
        else:
            words = [display_token(w, example_scheme, special_tokens) for w in words]
        top = finite_max(row)
        label = _label(attributed[b] if attributed is not None else predicted[b], id2label)
        attr_class = " · ".join(p for p in (label, visible_text(method or ""), f"÷{top:.3g}") if p)
        scaled = scale_signed(row)
        # Captum clips NaN to +1 (full green): a NaN / ±inf token gets 0 and its value in the text instead.
        words = [w if math.isfinite(v) else f"{w}[{number(v)}]" for w, v in zip(words, scaled.tolist())]
        scaled = torch.where(torch.isfinite(scaled), scaled, torch.zeros_like(scaled))
        records.append(
            captum_viz.VisualizationDataRecord(
                scaled,
                float(probabilities[b]),
                html.escape(_label(predicted[b], id2label)),
                html.escape(_label(true_labels[b], id2label)) if true_labels is not None else "",
                html.escape(attr_class),
                float(row.sum()),
                [html.escape(w) for w in words],
                None,
            )
        )
    return records
