r"""Side-by-side runs: NormXLogit, its ablations and Captum's methods on one model, one data set, one target.

:func:`compare` (exported as :func:`captum_normxlogit.compare` and
:func:`captum_normxlogit.comparison.compare`) explains the same inputs with every method, times each one and
measures its peak memory, then scores all of them with the faithfulness
metrics of :mod:`captum_normxlogit.metrics` on the same forward function. The
:class:`ComparisonResult` holds a tidy :class:`pandas.DataFrame`; :mod:`.report` renders
its Markdown report and draws the curves.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from captum.attr import Attribution, LayerAttribution
from torch import Tensor

from captum_normxlogit._core.normxlogit import NormXLogit
from captum_normxlogit._utils.checks import check_removal, check_special_ids, class_indices, model_vocab_size
from captum_normxlogit._utils.memory import PeakMeter
from captum_normxlogit._utils.padding import is_right_padded
from captum_normxlogit._utils.settings import NOT_GIVEN
from captum_normxlogit.comparison.result import ComparisonResult
from captum_normxlogit.comparison.settings import MethodSettings, MetricSettings, RunSettings, resolve_compare_settings
from captum_normxlogit.methods import (
    METHOD_KEYS,
    NORMXLOGIT,
    AttributionMethod,
    CaptumMethod,
    build_method,
    default_methods,
)
from captum_normxlogit.metrics.faithfulness import KINDS, FaithfulnessCurve, Removal, faithfulness_curves
from captum_normxlogit.metrics.settings import Perturbation

if TYPE_CHECKING:  # pandas is imported when a comparison runs, not with the package
    pass

__all__ = ["compare"]

MethodArg = Union[str, AttributionMethod, Attribution]  # what `methods=` may hold


# ----------------------------------------------------------------------------- compare
def _method(spec: MethodArg, nx: NormXLogit, build_kwargs: Dict[str, Any]) -> AttributionMethod:
    if isinstance(spec, AttributionMethod):
        return spec
    if isinstance(spec, str):
        return build_method(spec, nx, **build_kwargs)
    if isinstance(spec, Attribution):  # any Captum method, built on a forward taking (inputs, attention_mask)
        inputs = "ids" if isinstance(spec, LayerAttribution) else "embeds"
        return CaptumMethod(spec.get_name(), spec, nx.model, inputs=inputs, reduction=build_kwargs["reduction"])
    raise TypeError(
        f"methods must hold method keys (str), AttributionMethod objects or captum.attr.Attribution objects, "
        f"got {type(spec).__name__}."
    )


def _batches(mask: Tensor, batch_size: int) -> List[Tensor]:
    r"""Example indices grouped by length (longest first), so batches carry little padding."""
    order = sorted(range(mask.shape[0]), key=lambda i: -int(mask[i].sum()))
    return [torch.tensor(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]


def _progress(iterable: Any, desc: str, enabled: bool) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True)


def compare(
    nx: NormXLogit,
    input_ids: Tensor,
    attention_mask: Optional[Tensor] = None,
    *,
    special_token_ids: Sequence[int] = NOT_GIVEN,
    removal: Removal = NOT_GIVEN,
    labels: Optional[Tensor] = None,
    target: Optional[Tensor] = None,
    methods: Optional[Sequence[MethodArg]] = None,
    forward_func: Optional[Callable[..., Tensor]] = None,
    target_ids: Optional[Sequence[int]] = None,
    protected: Optional[Tensor] = None,
    length: str = NOT_GIVEN,
    pad_token_id: Optional[int] = NOT_GIVEN,
    baseline_keep_ids: Optional[Sequence[int]] = NOT_GIVEN,
    ratios: Sequence[float] = NOT_GIVEN,
    eraser_ratios: Sequence[float] = NOT_GIVEN,
    batch_size: int = NOT_GIVEN,
    forward_batch_size: int = NOT_GIVEN,
    ig_steps: int = NOT_GIVEN,
    internal_batch_size: Optional[int] = NOT_GIVEN,
    reduction: str = NOT_GIVEN,
    seed: int = NOT_GIVEN,
    progress: bool = NOT_GIVEN,
    forward_output: str = NOT_GIVEN,
    perturbation: Optional[Perturbation] = None,
    method_settings: Optional[MethodSettings] = None,
    metrics: Optional[MetricSettings] = None,
    run: Optional[RunSettings] = None,
) -> ComparisonResult:
    r"""Explain the same inputs with several methods and score them all on the same metrics.

    The settings come in four groups (:mod:`captum_normxlogit.comparison.settings`),
    each as one object or as its keywords (not both for one setting):
    ``perturbation=`` (``special_token_ids``, ``removal``, ``length``,
    ``pad_token_id``), ``method_settings=`` (``ig_steps``,
    ``internal_batch_size``, ``reduction``, ``seed``, ``baseline_keep_ids``),
    ``metrics=`` (``ratios``, ``eraser_ratios``, ``forward_batch_size``,
    ``forward_output``) and ``run=`` (``batch_size``, ``progress``). A keyword
    not given takes its group's value, or the default written once in the group.

    Args:
        nx (NormXLogit): Built on the model to explain.
        input_ids (Tensor): ``(N, T)`` token ids, right-padded.
        attention_mask (Tensor, optional): ``(N, T)``; None means no padding. Default: None
        special_token_ids (sequence of int): Never removed by the metrics
            (``(tokenizer.cls_token_id,)`` as the paper). Required, here or in ``perturbation``.
        removal (int or str): Replacement id for removed tokens
            (``tokenizer.mask_token_id`` as the paper) or ``"delete"``. Required,
            here or in ``perturbation``.
        labels (Tensor, optional): ``(N,)`` gold labels, for the accuracy metrics. Default: None
        target (Tensor, optional): ``(N,)`` classes to explain; None takes the
            model's own prediction (the paper). Default: None
        methods (sequence, optional): Method keys (see
            :data:`captum_normxlogit.methods.METHOD_KEYS`, case-insensitive),
            :class:`~captum_normxlogit.methods.AttributionMethod` objects, or
            any Captum ``Attribution`` built on ``forward_func`` (layer methods
            receive ids, the others word embeddings; ``(B, T, H)`` results are
            reduced with ``reduction``). Default: None (every method of
            :func:`~captum_normxlogit.methods.default_methods`)
        forward_func (callable, optional): ``f(inputs, attention_mask) -> (B, C)``
            logits, explained by the Captum methods and scored by the metrics.
            Default: ``nx.forward_func``
        target_ids (sequence of int, optional): Class index → the head row
            NormXLogit reads (label words of a causal LM). Default: None
        protected (Tensor, optional): ``(N, T)`` bool, more positions the
            metrics never remove (a prompt template). Default: None
        length (str, optional): What ``len`` in ``int(len * K)`` counts:
            ``"all"`` real tokens (the paper) or the ``"removable"`` ones. Default: ``"all"``
        pad_token_id (int, optional): For LayerIntegratedGradients' baseline and deletion. Default: None
        baseline_keep_ids (sequence of int, optional): Token ids kept in that
            baseline. Default: ``special_token_ids``
        ratios, eraser_ratios (sequence of float, optional): The two curves'
            ratios. Default: :data:`PAPER_RATIOS`, :data:`ERASER_RATIOS`
        batch_size (int, optional): Examples per attribution call. Default: 16
        forward_batch_size (int, optional): Perturbed inputs per forward call of the metrics. Default: 64
        ig_steps (int, optional): Integrated Gradients steps. Default: 50
        internal_batch_size (int, optional): Integrated Gradients' internal batch. Default: None
        reduction (str, optional): ``(B, T, H)`` → ``(B, T)`` for gradient methods. Default: ``"l1"`` (the paper)
        seed (int, optional): Of the random baseline. Default: 12
        progress (bool, optional): Show tqdm progress bars (one per method). Default: True
        forward_output (str, optional): ``"logits"`` or ``"probabilities"``:
            what ``forward_func`` returns, for the metrics (see
            :func:`~captum_normxlogit.metrics.faithfulness_curves`). Default: ``"logits"``
        perturbation (Perturbation, optional): ``special_token_ids``, ``removal``,
            ``length``, ``pad_token_id`` as one object. Default: None
        method_settings (MethodSettings, optional): The method settings as one object. Default: None
        metrics (MetricSettings, optional): The metric settings as one object. Default: None
        run (RunSettings, optional): ``batch_size`` and ``progress`` as one object. Default: None

    Returns:
        :class:`ComparisonResult`
    """
    how, built, measured, running = resolve_compare_settings(locals())  # first: locals() are the arguments
    special_token_ids, removal, length, pad_token_id = how.special_token_ids, how.removal, how.length, how.pad_token_id
    ig_steps, internal_batch_size, reduction, seed = (
        built.ig_steps,
        built.internal_batch_size,
        built.reduction,
        built.seed,
    )
    baseline_keep_ids = built.baseline_keep_ids
    ratios, eraser_ratios = measured.ratios, measured.eraser_ratios
    forward_batch_size, forward_output = measured.forward_batch_size, measured.forward_output
    batch_size, progress = running.batch_size, running.progress
    if not isinstance(nx, NormXLogit):
        raise TypeError(f"nx must be a NormXLogit built on the model, got {type(nx).__name__}.")
    if input_ids.dim() != 2 or input_ids.is_floating_point() or input_ids.shape[0] == 0:
        raise ValueError(f"input_ids must be a non-empty integer (N, T) tensor, got {tuple(input_ids.shape)}.")
    for name, value in (("batch_size", batch_size), ("forward_batch_size", forward_batch_size), ("ig_steps", ig_steps)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}.")
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    if tuple(mask.shape) != tuple(input_ids.shape):
        raise ValueError(f"attention_mask {tuple(mask.shape)} does not match input_ids {tuple(input_ids.shape)}.")
    if not bool(is_right_padded(mask).all()):
        raise ValueError("compare expects right-padded inputs (tokenizer.padding_side = 'right').")
    n = input_ids.shape[0]
    labels = None if labels is None else class_indices("labels", labels, n)
    target = None if target is None else class_indices("target", target, n)
    special_token_ids = check_special_ids(special_token_ids)
    if methods is not None and len(methods) == 0:
        raise ValueError(
            f"methods is empty; pass at least one method (a key such as {NORMXLOGIT.key!r}, an "
            f"AttributionMethod or a Captum Attribution), or None for all {len(METHOD_KEYS)}."
        )
    check_removal(removal)
    vocab = model_vocab_size(nx.model)
    for name, token in (("removal", removal), ("pad_token_id", pad_token_id)):
        if vocab is not None and isinstance(token, int) and not isinstance(token, bool) and token >= vocab:
            raise ValueError(
                f"{name} id {token} is not in the model's vocabulary (0..{vocab - 1}); pass an id of "
                "this model's tokenizer (e.g. tokenizer.mask_token_id)."
            )
    if protected is not None and tuple(protected.shape) != tuple(input_ids.shape):
        raise ValueError(f"protected {tuple(protected.shape)} does not match input_ids {tuple(input_ids.shape)}.")
    forward = forward_func or nx.forward_func
    build_kwargs = dict(
        pad_token_id=pad_token_id,
        special_token_ids=tuple(special_token_ids if baseline_keep_ids is None else baseline_keep_ids),
        forward_func=forward,
        target_ids=target_ids,
        ig_steps=ig_steps,
        internal_batch_size=internal_batch_size,
        reduction=reduction,
        seed=seed,
    )
    chosen = [
        _method(m, nx, build_kwargs) for m in (methods if methods is not None else default_methods(nx, **build_kwargs))
    ]
    names = [m.name for m in chosen]
    if len(set(names)) != len(names):
        raise ValueError(f"Method names must be unique, got {names}.")
    device = next(nx.model.parameters()).device
    batches = _batches(mask, batch_size)

    def rows(idx: Tensor) -> Tuple[Tensor, Tensor]:
        m = mask[idx]
        width = int(m.sum(-1).max())
        return input_ids[idx][:, :width].to(device), m[:, :width].to(device)

    # The model's own predictions (also warms the model up before anything is timed).
    predicted = torch.empty(n, dtype=torch.long)
    n_classes = 0
    with torch.no_grad():
        for idx in batches:
            output = forward(*rows(idx))
            predicted[idx], n_classes = output.argmax(-1).cpu(), int(output.shape[-1])
    # Checked before any method runs (the metrics check again, after minutes of attributions).
    for name, classes in (("target", target), ("labels", labels)):
        if classes is not None and (int(classes.min()) < 0 or int(classes.max()) >= n_classes):
            raise ValueError(
                f"{name} must hold classes in 0..{n_classes - 1} (forward_func gives {n_classes}), "
                f"got {classes.tolist()}."
            )
    targets = predicted if target is None else target

    attributions: Dict[str, List[Tensor]] = {}
    meters: Dict[str, PeakMeter] = {}
    for method in chosen:
        meter = meters[method.name] = PeakMeter(device)
        attributions[method.name] = []
        with meter:
            for idx in _progress(batches, method.name, progress):
                ids, m = rows(idx)
                attributions[method.name].append(method(ids, m, targets[idx].to(device)).cpu())

    all_ratios = sorted(set(float(r) for r in ratios) | set(float(r) for r in eraser_ratios))
    per_batch = []
    for b, idx in enumerate(_progress(batches, "faithfulness metrics", progress)):
        ids, m = rows(idx)
        per_batch.append(
            faithfulness_curves(
                forward,
                ids,
                {name: attributions[name][b] for name in names},
                attention_mask=m,
                special_token_ids=special_token_ids,
                removal=removal,
                target=targets[idx],
                labels=None if labels is None else labels[idx],
                ratios=all_ratios,
                protected=None if protected is None else protected[idx][:, : ids.shape[1]],
                length=length,
                pad_token_id=pad_token_id,
                batch_size=forward_batch_size,
                forward_output=forward_output,
            )
        )
    per_example = {
        name: {kind: FaithfulnessCurve.concat([p[name][kind] for p in per_batch]) for kind in KINDS} for name in names
    }

    table_rows, curve_rows = [], []
    has_labels = labels is not None
    for name in names:
        row: Dict[str, Any] = {"method": name}
        for protocol, chosen_ratios in (("paper", ratios), ("eraser", eraser_ratios)):
            prefix = "" if protocol == "paper" else "eraser_"
            for kind in KINDS:
                sub = _select(per_example[name][kind], chosen_ratios)
                short = kind[:4]
                row[f"{prefix}{short}_aopc"] = sub.aopc("drop")
                row[f"{prefix}{short}_acc_aopc"] = sub.aopc("accuracy") if has_labels else math.nan
                drops = sub.mean_drop().tolist()
                accs = sub.accuracy().tolist() if has_labels else [math.nan] * len(drops)
                for ratio, d, a in zip(sub.ratios, drops, accs):
                    curve_rows.append(
                        {
                            "method": name,
                            "protocol": protocol,
                            "kind": kind,
                            "ratio": ratio,
                            "prob_drop": d,
                            "accuracy": a,
                        }
                    )
        meter = meters[name]
        row["seconds"] = meter.seconds
        row["ms_per_example"] = 1000 * meter.seconds / n
        row["peak_mib"] = meter.peak / 2**20 if meter.available else math.nan
        table_rows.append(row)

    import pandas as pd

    accuracy = float((predicted == labels).double().mean()) if labels is not None else None
    settings = {
        "examples": n,
        "model": type(nx.model).__name__,
        "device": str(device),
        "methods": names,
        "removal": removal,
        "special_token_ids": list(special_token_ids),
        "protected": "none" if protected is None else "given positions",
        "length": length,
        "ig_steps": ig_steps,
        "internal_batch_size": internal_batch_size,
        "reduction": reduction,
        "seed": seed,
        "batch_size": batch_size,
        "forward_batch_size": forward_batch_size,
        "model_accuracy": accuracy,
        "torch_threads": torch.get_num_threads(),
        "target": "model prediction" if target is None else "given",
    }
    return ComparisonResult(pd.DataFrame(table_rows), pd.DataFrame(curve_rows), settings, per_example=per_example)


def _select(curve: FaithfulnessCurve, ratios: Sequence[float]) -> FaithfulnessCurve:
    r"""The columns of ``curve`` at ``ratios``, in that order."""
    cols = [min(range(len(curve.ratios)), key=lambda i: abs(curve.ratios[i] - float(r))) for r in ratios]
    correct = None if curve.correct is None else curve.correct[:, cols]
    return FaithfulnessCurve(
        curve.kind, tuple(float(r) for r in ratios), curve.drop[:, cols], correct, curve.removed[:, cols]
    )
