r"""Rows in :func:`attribute_dataset`'s schema from any method of :mod:`captum_normxlogit.methods`.

The ablation study compares NormXLogit's summary with LayerIntegratedGradients' on the same
examples; this builds the same table (``index``, ``input_ids``, ``tokens``, ``scores``,
``target``, ``target_label``, ``prob``, ``label``) for any method under the registry's
``(input_ids, attention_mask, target) -> (B, T)`` convention, in plain batches. It is for
comparisons on a few thousand examples, not a substitute for the streaming writer.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence

import torch
from torch import nn

from captum_normxlogit._utils.capture import eval_mode
from captum_normxlogit._utils.padding import pad_batch
from captum_normxlogit.methods import AttributionMethod

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["method_frame", "predict"]


@torch.no_grad()
def predict(model: nn.Module, input_ids: List[List[int]], pad_token_id: int, batch_size: int = 64) -> torch.Tensor:
    r"""Class probabilities of each example.

    Returns:
        *Tensor* ``(N, C)`` float32 on the CPU.
    """
    out = []
    with eval_mode(model):
        for start in range(0, len(input_ids), batch_size):
            ids, mask = pad_batch(input_ids[start : start + batch_size], pad_token_id)
            device = next(model.parameters()).device
            out.append(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().softmax(-1).cpu())
    return torch.cat(out)


def method_frame(
    method: AttributionMethod,
    model: nn.Module,
    input_ids: List[List[int]],
    tokens: List[List[str]],
    *,
    pad_token_id: int,
    id2label: Dict[int, str],
    targets: Optional[Sequence[int]] = None,
    labels: Optional[Sequence[int]] = None,
    batch_size: int = 32,
    progress: bool = False,
    probs: Optional[torch.Tensor] = None,
) -> "pd.DataFrame":
    r"""Attribute every example with ``method`` and return the rows as a table.

    Args:
        method (AttributionMethod): E.g. ``build_method("layer_ig", nx, ...)``.
        model (nn.Module): The classifier (for the probabilities and the predictions).
        input_ids (list of list of int): The examples' ids (special tokens included).
        tokens (list of list of str): Their token strings.
        pad_token_id (int): Pads each batch.
        id2label (dict of int to str): Class index to name (``target_label``).
        targets (sequence of int, optional): The class each example is explained for;
            None explains the model's prediction. Default: None
        labels (sequence of int, optional): Gold labels for the ``label`` column. Default: None
        batch_size (int, optional): Examples per call. Default: 32
        progress (bool, optional): A tqdm bar. Default: False
        probs (Tensor, optional): ``(N, C)`` class probabilities already computed by
            :func:`predict` (saves a pass). Default: None (computed here)

    Returns:
        pandas.DataFrame: one row per example; ``frame.attrs["seconds"]`` holds the
        method's total wall time.
    """
    import pandas as pd

    probs = predict(model, input_ids, pad_token_id) if probs is None else probs
    chosen = probs.argmax(-1) if targets is None else torch.as_tensor(list(targets), dtype=torch.long)
    scores: List[List[float]] = []
    seconds = 0.0
    starts: Iterable[int] = range(0, len(input_ids), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=method.name, unit="batch")
    for start in starts:
        rows = input_ids[start : start + batch_size]
        ids, mask = pad_batch(rows, pad_token_id)
        device = next(model.parameters()).device
        begin = time.perf_counter()
        out = method(ids.to(device), mask.to(device), chosen[start : start + batch_size].to(device)).cpu()
        seconds += time.perf_counter() - begin
        scores.extend(out[b, : len(r)].tolist() for b, r in enumerate(rows))
    frame = pd.DataFrame(
        {
            "index": range(len(input_ids)),
            "input_ids": [list(r) for r in input_ids],
            "tokens": [list(t) for t in tokens],
            "scores": scores,
            "target": chosen.tolist(),
            "target_label": [id2label[int(c)] for c in chosen],
            "prob": probs[torch.arange(len(chosen)), chosen].tolist(),
            "label": list(labels) if labels is not None else [None] * len(input_ids),
        }
    )
    frame.attrs["seconds"] = seconds
    return frame
