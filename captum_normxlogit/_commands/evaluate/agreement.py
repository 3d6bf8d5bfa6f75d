r"""Evidence alignment on agreement items (the paper's BLiMP experiment, §4), for SmolLM2.

Each item is a prefix ending right before a word whose number is fixed by one
earlier word (the cue), with a distractor noun of the other number in between
(see :mod:`captum_normxlogit._commands.evaluate.agreement_items`). Every method
explains the logit of the good next word; plausibility is how well its token
ranking finds the cue:

* NormXLogit, LogAt and their contrastive forms for every hidden state
  ``0..L`` from one pass each (the paper's layer-wise form: the norm stays at
  layer 0, the head reads hidden state ``l``);
* the embedding norm alone, LayerIntegratedGradients on the input embeddings
  (baseline: every token → PAD) and Saliency, reduced with ``l1`` as the paper
  did, and a random ranking.

Metrics follow the paper: average precision, and the dot product with a
softmax for NormXLogit, LogAt and the norm, a division by the sum for the
(unsigned) gradient scores, and uniform scores for random. The target is not
part of a causal LM's prefix, so nothing has to be removed from the ranking.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import pandas as pd
import torch
from torch import Tensor, nn

from captum_normxlogit._commands.evaluate.agreement_items import (
    PARADIGMS,
    EncodedItem,
    build_items,
    encode_items,
    interleave,
)
from captum_normxlogit._commands.evaluate.tasks import TASKS
from captum_normxlogit._core.normxlogit import NormXLogit
from captum_normxlogit._utils.padding import pad_batch
from captum_normxlogit.methods import LAYER_IG, LOGAT, NORM, NORMXLOGIT, RANDOM, SALIENCY, RandomMethod, build_method
from captum_normxlogit.metrics.plausibility import average_precision, dot_product

__all__ = ["AgreementResult", "evaluate_agreement", "run_agreement"]

#: Methods scored for every hidden state, and how their dot product normalises.
LAYER_METHODS = (NORMXLOGIT.name, f"{NORMXLOGIT.name} (good−bad)", LOGAT.name, f"{LOGAT.name} (bad word)")
#: Methods with one score per token, drawn as horizontal lines.
FLAT_METHODS = (NORM.name, LAYER_IG.name, SALIENCY.name, RANDOM.name)
_SUM_NORMALISED = (LAYER_IG.name, SALIENCY.name)


@dataclass
class AgreementResult:
    r"""What :func:`run_agreement` measured.

    Attributes:
        table (pandas.DataFrame): One row per ``(method, layer, paradigm)``
            with columns ``method``, ``layer`` (hidden state ``0..L`` for the
            layer-wise methods, missing for the others), ``paradigm``
            (``sva``, ``dna``, ``ana`` or ``all``), ``n_items``, ``ap``,
            ``ap_se``, ``dp``, ``dp_se`` (means over items and their standard
            errors) and ``cue_wins`` (share of items where the cue's
            highest-scoring token outscores the distractor noun's).
        accuracy (pandas.DataFrame): Per paradigm (and ``all``): ``n_items`` and
            the share of items where the model's logit for the good word beats
            the bad word's.
        dropped (dict): Items dropped before scoring, by reason.
        settings (dict): Model, steps, batch size, device, wall time.
    """

    table: pd.DataFrame
    accuracy: pd.DataFrame
    dropped: Dict[str, int]
    settings: Dict[str, Any] = field(default_factory=dict)

    def write(self, output_dir: "str | Path") -> List[Path]:
        r"""Write ``agreement.csv`` (the table), ``agreement.md`` (summary and
        per-layer tables) and ``agreement_layers.png`` (AP and DP per layer)
        into ``output_dir``, each atomically.

        Returns:
            list of pathlib.Path: The files written.
        """
        from captum_normxlogit._commands.evaluate.agreement_report import write_report

        return write_report(self.table, self.accuracy, self.dropped, self.settings, Path(output_dir))


def _batch(items: Sequence[EncodedItem], pad_token_id: int) -> Tuple[Tensor, Tensor]:
    r"""Right-padded ``(ids, mask)``."""
    return pad_batch([e.input_ids for e in items], pad_token_id)


def _cue_wins(scores: Tensor, chunk: Sequence[EncodedItem]) -> Tensor:
    r"""Whether the cue's best token outscores the distractor's best token: ``(B, ...)`` bool
    for scores ``(B, ..., T)``."""
    cue = torch.stack([scores[b, ..., e.evidence].amax(-1) for b, e in enumerate(chunk)])
    distractor = torch.stack([scores[b, ..., e.distractor].amax(-1) for b, e in enumerate(chunk)])
    return cue > distractor


def _score_layers(scores: Tensor, evidence: List[List[int]], mask: Tensor) -> Tuple[Tensor, Tensor]:
    r"""AP and softmax DP of ``(B, L + 1, T)`` scores, ``(B, L + 1)`` each, in one metric call."""
    batch, layers, width = scores.shape
    flat = scores.reshape(batch * layers, width)
    flat_evidence = [positions for positions in evidence for _ in range(layers)]
    flat_mask = mask.repeat_interleave(layers, dim=0)
    ap = average_precision(flat, flat_evidence, attention_mask=flat_mask)
    dp = dot_product(flat, flat_evidence, normalize="softmax", attention_mask=flat_mask)
    return ap.reshape(batch, layers), dp.reshape(batch, layers)


def evaluate_agreement(
    model: nn.Module,
    items: Sequence[EncodedItem],
    *,
    pad_token_id: int,
    dropped: Optional[Dict[str, int]] = None,
    ig_steps: int = 20,
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool = True,
    seed: int = 12,
) -> AgreementResult:
    r"""Score every method on already-encoded items with ``model``.

    Args:
        model (nn.Module): A causal LM NormXLogit supports, already on ``device``.
            Its parameters stop requiring gradients during the run (the
            gradient methods need them for the inputs only); the flags are
            restored afterwards.
        items (sequence of EncodedItem): From :func:`encode_items`.
        pad_token_id (int): Pads batches and is LayerIntegratedGradients' baseline token.
        dropped (dict, optional): Drop counts to carry into the result. Default: None
        ig_steps (int, optional): LayerIntegratedGradients steps. Default: 20
        batch_size (int, optional): Items per batch. Default: 16
        device (str, optional): Where the inputs go. Default: ``"cpu"``
        progress (bool, optional): Show a progress bar. Default: True
        seed (int, optional): Seeds the random rankings. Default: 12

    Returns:
        AgreementResult
    """
    if not items:
        raise ValueError("no agreement items to score: every item was dropped or limit was 0.")
    if batch_size < 1 or ig_steps < 1:
        raise ValueError(f"batch_size and ig_steps must be at least 1, got {batch_size} and {ig_steps}.")
    n_layers = NormXLogit(model).n_layers  # an unsupported model fails here, before anything changes
    start = time.perf_counter()
    with _inputs_only_gradients(model):
        rows, correct = _score_all(model, items, pad_token_id, ig_steps, batch_size, device, progress, seed)
    settings = dict(
        model=type(model).__name__,
        n_layers=n_layers,
        ig_steps=ig_steps,
        batch_size=batch_size,
        device=str(device),
        seed=seed,
        seconds=round(time.perf_counter() - start, 1),
    )
    return AgreementResult(_aggregate(pd.DataFrame(rows)), _accuracy(correct), dict(dropped or {}), settings)


@contextmanager
def _inputs_only_gradients(model: nn.Module) -> Iterator[None]:
    r"""Parameters stop requiring gradients for the run (the gradient methods
    differentiate with respect to the inputs only, and the backward pass gets
    cheaper); their flags are restored afterwards, even on error."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def _score_all(
    model: nn.Module,
    items: Sequence[EncodedItem],
    pad_token_id: int,
    ig_steps: int,
    batch_size: int,
    device: str,
    progress: bool,
    seed: int,
) -> Tuple[List[Dict[str, Any]], List[Tuple[str, bool]]]:
    r"""Per-item metric rows of every method, and per-item model correctness."""
    from tqdm.auto import tqdm

    nx = NormXLogit(model)
    logat = NormXLogit(model, multiply_by_inputs=False)
    lig = build_method(LAYER_IG.key, nx, pad_token_id=pad_token_id, ig_steps=ig_steps, reduction="l1")
    saliency = build_method(SALIENCY.key, nx, reduction="l1")
    # A fresh random ranking per item (seeded by its index in the run): one draw for every row
    # would put the cue at the same rank in every equal-length template item.
    random_method = RandomMethod(seed)
    # Batches of equal length waste no IG steps on padding; results are per item, so order does not matter.
    order = sorted(range(len(items)), key=lambda i: len(items[i].input_ids))
    rows: List[Dict[str, Any]] = []
    correct: List[Tuple[str, bool]] = []
    bar = tqdm(total=len(items), desc="agreement-smollm2", unit="item", disable=not progress)
    for first in range(0, len(items), batch_size):
        indices = order[first : first + batch_size]
        chunk = [items[i] for i in indices]
        ids, mask = _batch(chunk, pad_token_id)
        ids, mask = ids.to(device), mask.to(device)
        good = torch.tensor([e.good_id for e in chunk], device=device)
        bad = torch.tensor([e.bad_id for e in chunk], device=device)
        evidence = [e.evidence for e in chunk]
        with torch.no_grad():
            logits = nx.forward_func(ids, mask)
        wins = (logits.gather(1, good[:, None]) > logits.gather(1, bad[:, None])).flatten().tolist()
        correct.extend((e.item.paradigm, w) for e, w in zip(chunk, wins))
        args = (mask,)
        nx_good = nx.attribute_all_layers(ids, target=good, additional_forward_args=args)
        nx_bad = nx.attribute_all_layers(ids, target=bad, additional_forward_args=args)
        layered = dict(
            zip(
                LAYER_METHODS,
                (
                    nx_good,
                    nx_good - nx_bad,  # = foil=bad, by linearity in the logit
                    logat.attribute_all_layers(ids, target=good, additional_forward_args=args),
                    logat.attribute_all_layers(ids, target=bad, additional_forward_args=args),
                ),
            )
        )
        mask_cpu = mask.cpu()
        for name, scores in layered.items():
            scores = scores.cpu()
            ap, dp = _score_layers(scores, evidence, mask_cpu)
            wins = _cue_wins(scores, chunk)
            for b, (index, e) in enumerate(zip(indices, chunk)):
                rows.extend(
                    dict(
                        item=index,
                        paradigm=e.item.paradigm,
                        method=name,
                        layer=layer,
                        ap=float(ap[b, layer]),
                        dp=float(dp[b, layer]),
                        cue_wins=float(wins[b, layer]),
                    )
                    for layer in range(ap.shape[1])
                )
        norms = nx.embedding_norm(ids, additional_forward_args=args)
        assert isinstance(norms, Tensor)  # ids as one tensor give one tensor back
        flat = dict(
            zip(
                FLAT_METHODS,
                (
                    (norms, "softmax"),
                    (lig(ids, mask, good), "sum"),
                    (saliency(ids, mask, good), "sum"),
                    (random_method.item_scores(indices, ids.shape[1]), None),
                ),
            )
        )
        for name, (scores, normalize) in flat.items():
            scores = scores.detach().cpu()
            ap = average_precision(scores, evidence, attention_mask=mask_cpu)
            if normalize is None:  # the paper's random DP: uniform scores
                dp = dot_product(torch.ones_like(scores), evidence, normalize="sum", attention_mask=mask_cpu)
            else:
                dp = dot_product(scores, evidence, normalize=normalize, attention_mask=mask_cpu)
            wins = _cue_wins(scores, chunk)
            rows.extend(
                dict(
                    item=index,
                    paradigm=e.item.paradigm,
                    method=name,
                    layer=None,
                    ap=float(ap[b]),
                    dp=float(dp[b]),
                    cue_wins=float(wins[b]),
                )
                for b, (index, e) in enumerate(zip(indices, chunk))
            )
        bar.update(len(chunk))
    bar.close()
    return rows, correct


def _aggregate(per_item: pd.DataFrame) -> pd.DataFrame:
    r"""Means and standard errors per ``(method, layer, paradigm)``, plus ``paradigm="all"``."""
    per_item = per_item.assign(layer=per_item["layer"].astype("Int64"))
    both = pd.concat([per_item, per_item.assign(paradigm="all")], ignore_index=True)
    grouped = both.groupby(["method", "layer", "paradigm"], dropna=False, sort=False)
    table = grouped.agg(
        n_items=("ap", "size"),
        ap=("ap", "mean"),
        ap_se=("ap", "sem"),
        dp=("dp", "mean"),
        dp_se=("dp", "sem"),
        cue_wins=("cue_wins", "mean"),
    ).reset_index()
    methods = {name: i for i, name in enumerate(LAYER_METHODS + FLAT_METHODS)}
    paradigms = {name: i for i, name in enumerate(("all",) + PARADIGMS)}
    table = table.assign(_m=table["method"].map(methods), _p=table["paradigm"].map(paradigms))
    return table.sort_values(["_m", "_p", "layer"]).drop(columns=["_m", "_p"]).reset_index(drop=True)


def _accuracy(correct: List[Tuple[str, bool]]) -> pd.DataFrame:
    frame = pd.DataFrame(correct, columns=["paradigm", "correct"])
    frame = pd.concat([frame, frame.assign(paradigm="all")], ignore_index=True)
    out = frame.groupby("paradigm", sort=False).agg(n_items=("correct", "size"), accuracy=("correct", "mean"))
    order = [p for p in PARADIGMS + ("all",) if p in out.index]
    return out.loc[order].reset_index()


def run_agreement(
    *,
    limit: Optional[int] = TASKS["agreement-smollm2"].limit,
    ig_steps: int = TASKS["agreement-smollm2"].ig_steps,
    batch_size: int = TASKS["agreement-smollm2"].batch_size,
    device: str = "cpu",
    progress: bool = True,
) -> AgreementResult:
    r"""The evidence-alignment experiment on SmolLM2-135M-Instruct.

    Builds 100 items per paradigm (subject–verb, determiner–noun, anaphor
    agreement, each with a distractor noun), drops those whose good or bad
    word is not one SmolLM2 token, and scores NormXLogit per layer, its
    ablations, LayerIntegratedGradients, Saliency and random against the cue
    words with average precision and the paper's dot product.

    Args:
        limit (int, optional): Score only the first ``limit`` items, taken
            round-robin over the paradigms so any limit stays balanced.
            Default: None (all 300)
        ig_steps (int, optional): LayerIntegratedGradients steps. Default: 20
        batch_size (int, optional): Items per batch (IG runs
            ``batch_size * ig_steps`` sequences at once). Default: 16
        device (str, optional): ``"cpu"``, ``"cuda"``, ... Default: ``"cpu"``
        progress (bool, optional): Show a progress bar. Default: True

    Returns:
        :class:`AgreementResult`: ``.table`` and ``.write(output_dir)``.
    """
    from captum_normxlogit.resources import load_smollm2

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}.")
    model, tokenizer = load_smollm2()
    model.to(device)  # type: ignore[arg-type]  # transformers' wrapped .to() hides its signature from mypy
    encoded, dropped = encode_items(build_items(), tokenizer)
    encoded = interleave(encoded)[:limit]
    result = evaluate_agreement(
        model,
        encoded,
        pad_token_id=tokenizer.pad_token_id,
        dropped=dropped,
        ig_steps=ig_steps,
        batch_size=batch_size,
        device=device,
        progress=progress,
    )
    result.settings["model"] = "SmolLM2-135M-Instruct"
    return result
