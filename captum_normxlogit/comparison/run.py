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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from captum.attr import Attribution, LayerAttribution
from torch import Tensor

from captum_normxlogit._core.normxlogit import NormXLogit
from captum_normxlogit._utils.atomic import atomic_file, atomic_write_text
from captum_normxlogit._utils.checks import check_removal, check_special_ids, class_indices, model_vocab_size
from captum_normxlogit._utils.memory import PeakMeter
from captum_normxlogit._utils.padding import is_right_padded
from captum_normxlogit.comparison.report import curves_figure, markdown_report
from captum_normxlogit.methods import (
    IG,
    METHOD_KEYS,
    NORMXLOGIT,
    RANDOM,
    AttributionMethod,
    CaptumMethod,
    build_method,
    default_methods,
)
from captum_normxlogit.metrics.faithfulness import (
    ERASER_RATIOS,
    KINDS,
    PAPER_RATIOS,
    FaithfulnessCurve,
    Removal,
    faithfulness_curves,
)

if TYPE_CHECKING:  # pandas is imported when a comparison runs, not with the package
    import pandas as pd

__all__ = ["ComparisonResult", "compare"]

MethodArg = Union[str, AttributionMethod, Attribution]  # what `methods=` may hold


@dataclass
class ComparisonResult:
    r"""What :func:`compare` returns.

    Attributes:
        table (pandas.DataFrame): One row per method, in run order. Columns:
            ``method``; ``comp_aopc`` / ``suff_aopc`` (mean probability drop
            over K = 10..90 %, the paper's Comp_CD / Suff_CD: higher / lower
            is better); ``comp_acc_aopc`` / ``suff_acc_aopc`` (gold-label
            accuracy, lower / higher is better; NaN without labels);
            ``eraser_comp_aopc``, ``eraser_suff_aopc``, ``eraser_comp_acc_aopc``,
            ``eraser_suff_acc_aopc`` (the same over the ERASER bins 1, 5, 10,
            20, 50 %); ``seconds`` (wall time of the attributions alone),
            ``ms_per_example`` and ``peak_mib`` (peak memory of the
            attributions above what was in use before: CUDA allocations on a
            GPU, sampled resident memory on a CPU).
        curves (pandas.DataFrame): Long format, one row per method, protocol
            (``"paper"`` / ``"eraser"``), kind and ratio, with ``prob_drop``
            and ``accuracy``.
        settings (dict): How the run was made (counts, steps, removal, ...).
        notes (list of str): Free lines written at the top of the Markdown report.
        per_example (dict): ``{method: {kind: FaithfulnessCurve}}`` over all
            examples (paper and ERASER ratios together).
    """

    table: "pd.DataFrame"
    curves: "pd.DataFrame"
    settings: Dict[str, Any]
    notes: List[str] = field(default_factory=list)
    per_example: Dict[str, Dict[str, FaithfulnessCurve]] = field(default_factory=dict, repr=False)

    def plot(self, path: Union[str, Path], title: Optional[str] = None) -> Path:
        r"""Draw the comprehensiveness and sufficiency curves (paper ratios) to a PNG, atomically.

        Returns:
            pathlib.Path: ``path``.
        """
        path = Path(path)
        figure = curves_figure(self.curves, title or self.settings.get("title", "Faithfulness curves"))
        with atomic_file(path) as tmp:
            figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        return path

    def to_markdown(self, image: Optional[str] = None) -> str:
        r"""The report: notes, settings and the table, with ``image`` linked under it."""
        return markdown_report(self.table, self.settings, self.notes, image)

    def write(self, output_dir: Union[str, Path], stem: str = "comparison") -> List[Path]:
        r"""Write ``<stem>.csv`` (the table), ``<stem>_curves.csv``, ``<stem>.md`` and ``<stem>.png``.

        Each file is written atomically: it is complete or absent, never half written.

        Args:
            output_dir (str or Path): Created if missing; must not be a file.
            stem (str, optional): File name stem. Default: ``"comparison"``

        Returns:
            list of pathlib.Path: The four files, in the order above.
        """
        folder = Path(output_dir)
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder} exists and is not a folder; choose another output directory.")
        folder.mkdir(parents=True, exist_ok=True)
        png = self.plot(folder / f"{stem}.png")
        paths = [folder / f"{stem}.csv", folder / f"{stem}_curves.csv", folder / f"{stem}.md", png]
        atomic_write_text(paths[0], self.table.to_csv(index=False))
        atomic_write_text(paths[1], self.curves.to_csv(index=False))
        atomic_write_text(paths[2], self.to_markdown(png.name))
        return paths


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
    special_token_ids: Sequence[int],
    removal: Removal,
    labels: Optional[Tensor] = None,
    target: Optional[Tensor] = None,
    methods: Optional[Sequence[MethodArg]] = None,
    forward_func: Optional[Callable[..., Tensor]] = None,
    target_ids: Optional[Sequence[int]] = None,
    protected: Optional[Tensor] = None,
    length: str = "all",
    pad_token_id: Optional[int] = None,
    baseline_keep_ids: Optional[Sequence[int]] = None,
    ratios: Sequence[float] = PAPER_RATIOS,
    eraser_ratios: Sequence[float] = ERASER_RATIOS,
    batch_size: int = 16,
    forward_batch_size: int = 64,
    ig_steps: int = IG.defaults["ig_steps"],
    internal_batch_size: Optional[int] = None,
    reduction: str = IG.defaults["reduction"],
    seed: int = RANDOM.defaults["seed"],
    progress: bool = True,
    forward_output: str = "logits",
) -> ComparisonResult:
    r"""Explain the same inputs with several methods and score them all on the same metrics.

    Args:
        nx (NormXLogit): Built on the model to explain.
        input_ids (Tensor): ``(N, T)`` token ids, right-padded.
        attention_mask (Tensor, optional): ``(N, T)``; None means no padding. Default: None
        special_token_ids (sequence of int): Never removed by the metrics
            (``(tokenizer.cls_token_id,)`` as the paper).
        removal (int or str): Replacement id for removed tokens
            (``tokenizer.mask_token_id`` as the paper) or ``"delete"``.
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

    Returns:
        :class:`ComparisonResult`
    """
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
