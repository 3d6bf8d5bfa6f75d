r"""Faithfulness: comprehensiveness, sufficiency and their AOPC, for any Captum-shaped token attribution.

The protocol is the NormXLogit authors' (Abbasi et al., EMNLP 2025, after
DeYoung et al.'s ERASER). For each ratio ``K`` and example ``X`` with ``len``
real tokens, rank the *removable* tokens by their score (highest first) and let
``n = int(len * K)``:

- **comprehensiveness** removes the top ``n`` tokens;
- **sufficiency** removes every removable token *except* the top ``n``.

Removal replaces tokens with a replacement id (``[MASK]`` in the paper; the
attention mask is unchanged) or deletes them. Pad positions are never ranked,
removed or counted; protected positions (``[CLS]``, BOS, a prompt template)
are never ranked or removed. Each curve point is the drop in the softmax
probability of the explained class, ``f_y(X) - f_y(X')`` (comprehensiveness:
higher is better; sufficiency: lower is better), and, given gold labels, the
accuracy of the perturbed predictions (comprehensiveness: lower is better;
sufficiency: higher is better). The aggregate (AOPC) is the plain mean of the
curve over its ratios strictly between 0 and 1: K = 10..90 % for
:data:`PAPER_RATIOS` (the authors' ``np.sum(curve[1:10]) / 9``) and the five
bins for :data:`ERASER_RATIOS` (ERASER's released scorer).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from captum_normxlogit._utils.checks import (
    Removal,
    check_removal,
    check_special_ids,
    class_indices,
    model_vocab_size,
)
from captum_normxlogit._utils.padding import is_right_padded
from captum_normxlogit._utils.settings import NOT_GIVEN, resolve_group
from captum_normxlogit.metrics._removal import KINDS, bool_mask, perturb_tokens, removal_masks, token_scores  # noqa: F401
from captum_normxlogit.metrics.settings import ERASER_RATIOS, PAPER_RATIOS, CurveSettings, Perturbation

__all__ = [
    "ERASER_RATIOS",
    "PAPER_RATIOS",
    "CurveSettings",
    "FaithfulnessCurve",
    "Perturbation",
    "aopc",
    "comprehensiveness",
    "faithfulness_curves",
    "perturb_tokens",
    "removal_masks",
    "sufficiency",
    "token_scores",
]

#: What ``forward_func`` returns: logits (softmax applied here) or probabilities (used as they are).
FORWARD_OUTPUTS = ("logits", "probabilities")
# A row within this of summing to 1 counts as a probability distribution (half-precision softmax rounds).
_SUM_TOLERANCE = 1e-2


# ----------------------------------------------------------------------------- curves
@dataclass
class FaithfulnessCurve:
    r"""Per-example results of one removal curve.

    Attributes:
        kind (str): ``"comprehensiveness"`` or ``"sufficiency"``.
        ratios (tuple of float): The ``K`` values, in order.
        drop (Tensor): ``(B, K)`` float64, ``f_y(X) - f_y(X')``: the fall of
            the explained class's softmax probability.
        correct (Tensor or None): ``(B, K)`` bool, perturbed prediction ==
            gold label; None without labels.
        removed (Tensor): ``(B, K)`` long, how many tokens were removed.
    """

    kind: str
    ratios: Tuple[float, ...]
    drop: Tensor
    correct: Optional[Tensor]
    removed: Tensor

    def mean_drop(self) -> Tensor:
        r"""``(K,)``: the curve of the paper's ``Comp_CD`` / ``Suff_CD``."""
        return self.drop.mean(0)

    def accuracy(self) -> Tensor:
        r"""``(K,)``: the curve of ``Comp_Acc`` / ``Suff_Acc`` (needs labels)."""
        if self.correct is None:
            raise ValueError(f"This {self.kind} curve was computed without labels; pass labels= for accuracy.")
        return self.correct.double().mean(0)

    def aopc(self, variant: str = "drop", over: Optional[Iterable[float]] = None) -> float:
        r"""The aggregate: mean of the ``"drop"`` or ``"accuracy"`` curve, see :func:`aopc`."""
        if variant not in ("drop", "accuracy"):
            raise ValueError(f"variant must be 'drop' or 'accuracy', got {variant!r}.")
        curve = self.mean_drop() if variant == "drop" else self.accuracy()
        return aopc(curve, self.ratios, over)

    @staticmethod
    def concat(curves: Sequence["FaithfulnessCurve"]) -> "FaithfulnessCurve":
        r"""Joins the curves of several batches (same kind and ratios)."""
        first = curves[0]
        if any(c.kind != first.kind or c.ratios != first.ratios for c in curves):
            raise ValueError("Only curves of the same kind and ratios can be joined.")
        # the curves of one run all have ``correct`` when the first has it
        correct = None if first.correct is None else torch.cat([c.correct for c in curves])  # type: ignore[misc]
        return FaithfulnessCurve(
            first.kind,
            first.ratios,
            torch.cat([c.drop for c in curves]),
            correct,
            torch.cat([c.removed for c in curves]),
        )


def aopc(curve: Tensor, ratios: Sequence[float], over: Optional[Iterable[float]] = None) -> float:
    r"""Area over the perturbation curve, as the NormXLogit authors and ERASER compute it: a plain mean.

    Args:
        curve (Tensor): ``(K,)`` values, one per ratio.
        ratios (sequence of float): The ``K`` ratios of ``curve``.
        over (iterable of float, optional): Which ratios to average. None
            takes those strictly between 0 and 1: K = 10..90 % of
            :data:`PAPER_RATIOS` (the paper), all five :data:`ERASER_RATIOS`.
            Default: None

    Returns:
        float
    """
    ratios = [float(r) for r in ratios]
    if len(ratios) != int(curve.numel()):
        raise ValueError(f"curve has {curve.numel()} values but {len(ratios)} ratios were given.")
    wanted = [r for r in ratios if 0.0 < r < 1.0] if over is None else [float(r) for r in over]
    missing = [r for r in wanted if not any(abs(r - q) < 1e-9 for q in ratios)]
    if missing or not wanted:
        raise ValueError(f"Cannot average over ratios {wanted}: the curve has {ratios}.")
    picked = [i for i, q in enumerate(ratios) if any(abs(r - q) < 1e-9 for r in wanted)]
    return float(curve.flatten()[picked].double().mean())


def _are_probabilities(values: Tensor) -> bool:
    return bool((values >= 0).all()) and bool(((values.sum(-1) - 1).abs() <= _SUM_TOLERANCE).all())


def _predict(
    forward_func: Callable[..., Tensor],
    ids: Tensor,
    mask: Tensor,
    types: Optional[Tensor],
    forward_output: str = "logits",
    check: bool = False,
) -> Tensor:
    r"""``(B, C)`` float64 probabilities on the CPU. With ``check``, logits that are already
    probabilities are refused: a second softmax would flatten them and shrink every drop."""
    args = (ids, mask) if types is None else (ids, mask, types)
    with torch.no_grad():
        logits = forward_func(*args)
    if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != ids.shape[0] or logits.shape[1] < 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"forward_func must return logits of shape (B, C) with C >= 2, got {shape}.")
    values = logits.detach().to("cpu", torch.float64)
    if forward_output == "probabilities":
        if not _are_probabilities(values):
            raise ValueError(
                "forward_output='probabilities', but forward_func returned values that are not probabilities "
                "(every row must be non-negative and sum to 1); for logits leave forward_output='logits'."
            )
        return values
    if check and _are_probabilities(values):
        raise ValueError(
            "forward_func seems to return probabilities: every row of its output is non-negative and sums to 1. "
            "The metrics apply softmax to logits themselves, and a second softmax would flatten these and shrink "
            "every probability drop (and the AOPC). Return logits (or log-probabilities), or pass "
            "forward_output='probabilities' to use the probabilities as they are."
        )
    return values.softmax(-1)


def faithfulness_curves(
    forward_func: Callable[..., Tensor],
    input_ids: Tensor,
    attributions: Dict[str, Union[Tensor, Tuple[Tensor, ...]]],
    *,
    special_token_ids: Sequence[int] = NOT_GIVEN,
    removal: Removal = NOT_GIVEN,
    attention_mask: Optional[Tensor] = None,
    target: Optional[Tensor] = None,
    labels: Optional[Tensor] = None,
    ratios: Sequence[float] = NOT_GIVEN,
    kinds: Sequence[str] = NOT_GIVEN,
    reduction: Optional[str] = None,
    protected: Optional[Tensor] = None,
    length: str = NOT_GIVEN,
    token_type_ids: Optional[Tensor] = None,
    pad_token_id: Optional[int] = NOT_GIVEN,
    batch_size: int = NOT_GIVEN,
    forward_output: str = NOT_GIVEN,
    perturbation: Optional[Perturbation] = None,
    curves: Optional[CurveSettings] = None,
) -> Dict[str, Dict[str, FaithfulnessCurve]]:
    r"""Comprehensiveness and sufficiency curves of several attributions of the same batch.

    Every distinct perturbed input is run once, however many methods, kinds or
    ratios produce it (``K = 0`` of comprehensiveness and ``K = 100 %`` of
    sufficiency are the unperturbed input and cost nothing).

    The settings come in two groups, as objects or as keywords (not both for
    one setting): ``perturbation=`` :class:`~captum_normxlogit.metrics.settings.Perturbation`
    (``removal``, ``special_token_ids``, ``length``, ``pad_token_id``) and
    ``curves=`` :class:`~captum_normxlogit.metrics.settings.CurveSettings`
    (``ratios``, ``kinds``, ``batch_size``, ``forward_output``). A keyword not
    given takes the group's value, or the default written once in those classes.

    Args:
        forward_func (callable): ``forward_func(input_ids, attention_mask)``
            (or ``(..., token_type_ids)`` when given) returning logits ``(B, C)``,
            e.g. ``NormXLogit(model).forward_func``. An output whose rows are all
            non-negative and sum to 1 is refused as probabilities (see ``forward_output``).
        input_ids (Tensor): ``(B, T)`` token ids.
        attributions (dict): Method name → ``(B, T)`` or ``(B, T, H)`` attributions.
        special_token_ids (sequence of int): Ids never ranked nor removed, e.g.
            ``(tokenizer.cls_token_id,)`` as the paper (which removes [SEP]);
            ``()`` lets every token go. Required, here or in ``perturbation``.
        removal (int or str): Replacement id (``tokenizer.mask_token_id``) or
            ``"delete"``, see :func:`perturb_tokens`. Required, here or in ``perturbation``.
        attention_mask (Tensor, optional): ``(B, T)``; None means no padding. Default: None
        target (Tensor, optional): ``(B,)`` class whose probability is tracked;
            None takes the prediction on the unperturbed input. Default: None
        labels (Tensor, optional): ``(B,)`` gold labels, for the accuracy curves. Default: None
        ratios (sequence of float, optional): Default: :data:`PAPER_RATIOS`
        kinds (sequence of str, optional): Default: both
        reduction (str, optional): For ``(B, T, H)`` attributions, see :func:`token_scores`. Default: None
        protected (Tensor, optional): ``(B, T)`` bool, more positions never
            ranked nor removed (e.g. a prompt template). Default: None
        length (str, optional): ``"all"`` or ``"removable"``, see :func:`removal_masks`.
            Default: ``"all"``
        token_type_ids (Tensor, optional): ``(B, T)``. Default: None
        pad_token_id (int, optional): For ``removal="delete"``. Default: None
        batch_size (int, optional): Perturbed inputs per forward call. Default: 64
        forward_output (str, optional): ``"logits"``: softmax is applied to
            ``forward_func``'s output (log-probabilities work too); an output
            that already is probabilities is refused, since a second softmax
            would silently shrink every drop. ``"probabilities"``: the output
            is used as it is (and must be probabilities). Default: ``"logits"``
        perturbation (Perturbation, optional): The removal settings as one object. Default: None
        curves (CurveSettings, optional): The curve settings as one object. Default: None

    Returns:
        ``{method: {kind: FaithfulnessCurve}}``.
    """
    how = resolve_group(
        Perturbation,
        perturbation,
        "perturbation",
        "faithfulness_curves",
        removal=removal,
        special_token_ids=special_token_ids,
        length=length,
        pad_token_id=pad_token_id,
    )
    which = resolve_group(
        CurveSettings,
        curves,
        "curves",
        "faithfulness_curves",
        ratios=ratios,
        kinds=kinds,
        batch_size=batch_size,
        forward_output=forward_output,
    )
    removal, special_token_ids, length, pad_token_id = how.removal, how.special_token_ids, how.length, how.pad_token_id
    ratios, kinds, batch_size, forward_output = which.ratios, which.kinds, which.batch_size, which.forward_output
    if input_ids.dim() != 2 or input_ids.is_floating_point():
        raise ValueError(f"input_ids must be an integer (B, T) tensor, got {input_ids.dtype} {tuple(input_ids.shape)}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    check_removal(removal)
    special_token_ids = check_special_ids(special_token_ids)
    if forward_output not in FORWARD_OUTPUTS:
        raise ValueError(f"forward_output must be one of {FORWARD_OUTPUTS}, got {forward_output!r}.")
    vocab = model_vocab_size(forward_func)
    for name, token in (("removal", removal), ("pad_token_id", pad_token_id)):
        if vocab is not None and isinstance(token, int) and not isinstance(token, bool) and token >= vocab:
            raise ValueError(
                f"{name} id {token} is not in the model's vocabulary (0..{vocab - 1}); pass an id of this model's "
                "tokenizer (e.g. tokenizer.mask_token_id)" + (" or 'delete'." if name == "removal" else ".")
            )
    device, shape = input_ids.device, tuple(input_ids.shape)
    ids_cpu = input_ids.detach().cpu()
    mask = torch.ones_like(ids_cpu) if attention_mask is None else attention_mask.detach().cpu()
    types_cpu = None if token_type_ids is None else token_type_ids.detach().cpu()
    for name, value in (("attention_mask", mask), ("token_type_ids", types_cpu)):
        if value is not None and tuple(value.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(value.shape)}, input_ids {shape}.")
    keep = bool_mask("protected", protected, shape)
    for special in special_token_ids:
        keep |= ids_cpu == int(special)
    scores = {name: token_scores(a, reduction) for name, a in attributions.items()}
    for name, s in scores.items():
        if tuple(s.shape) != shape:
            raise ValueError(f"attributions of {name!r} have shape {tuple(s.shape)}, input_ids {shape}.")
    plans = {(n, k): removal_masks(s, mask, ratios, k, keep, length) for n, s in scores.items() for k in kinds}

    target = None if target is None else class_indices("target", target, shape[0])
    labels = None if labels is None else class_indices("labels", labels, shape[0])

    def run(ids: Tensor, m: Tensor, types: Optional[Tensor], check: bool = False) -> Tensor:
        if bool(is_right_padded(m).all()):  # right padding: drop the slots no row uses
            width = int(m.sum(0).nonzero().max()) + 1
            ids, m, types = ids[:, :width], m[:, :width], None if types is None else types[:, :width]
        moved_types = None if types is None else types.to(device)
        return _predict(
            forward_func, ids.to(device), m.to(device), moved_types, forward_output=forward_output, check=check
        )

    base = run(ids_cpu, mask, types_cpu, check=True)
    n_classes = base.shape[1]
    target = base.argmax(-1) if target is None else target
    if int(target.min()) < 0 or int(target.max()) >= n_classes:
        raise ValueError(f"target must hold one class in 0..{n_classes - 1} per example, got {target.tolist()}.")
    if labels is not None and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(
            f"labels must hold classes in 0..{n_classes - 1} (forward_func gives {n_classes}), got {labels.tolist()}."
        )
    rows = torch.arange(shape[0])
    p_target, predicted = base[rows, target], base.argmax(-1)

    # Every distinct (example, removed positions) pair, run once.
    key_index: Dict[Tuple[int, bytes], int] = {}
    pending: List[Tuple[int, Tensor]] = []
    for remove in plans.values():
        for k in range(remove.shape[0]):
            for b in remove[k].any(-1).nonzero().flatten().tolist():
                key = (b, remove[k, b].numpy().tobytes())
                if key not in key_index:
                    key_index[key] = len(pending)
                    pending.append((b, remove[k, b]))
    results = torch.empty(len(pending), 2, dtype=torch.float64)
    # Group by example length so each forward call carries little padding.
    order = sorted(range(len(pending)), key=lambda i: int(mask[pending[i][0]].sum()))
    for start in range(0, len(order), batch_size):
        chunk = torch.tensor(order[start : start + batch_size])
        b_idx = torch.tensor([pending[i][0] for i in chunk.tolist()])
        remove = torch.stack([pending[i][1] for i in chunk.tolist()])
        types = None if types_cpu is None else types_cpu[b_idx]
        perturbed = perturb_tokens(ids_cpu[b_idx], mask[b_idx], remove, removal, types, pad_token_id)
        try:
            probs = run(*perturbed)
        except IndexError as error:  # the unperturbed batch ran: an id we put in is outside the vocabulary
            given = f"removal id {removal}" if removal != "delete" else f"pad_token_id {pad_token_id}"
            raise ValueError(
                f"{given} is not in the model's vocabulary: forward_func raised IndexError ({error}) on the "
                "perturbed inputs. Pass an id of this model's tokenizer (e.g. tokenizer.mask_token_id)."
            ) from error
        results[chunk, 0] = probs[torch.arange(len(chunk)), target[b_idx]]
        results[chunk, 1] = probs.argmax(-1).double()

    out: Dict[str, Dict[str, FaithfulnessCurve]] = {}
    for (name, kind), remove in plans.items():
        p = p_target[:, None].repeat(1, len(ratios))
        pred = predicted[:, None].repeat(1, len(ratios))
        for k in range(remove.shape[0]):
            for b in remove[k].any(-1).nonzero().flatten().tolist():
                i = key_index[(b, remove[k, b].numpy().tobytes())]
                p[b, k], pred[b, k] = results[i, 0], int(results[i, 1])
        correct = None if labels is None else pred == labels[:, None]
        curve = FaithfulnessCurve(
            kind, tuple(float(r) for r in ratios), p_target[:, None] - p, correct, remove.sum(-1).T.contiguous()
        )
        out.setdefault(name, {})[kind] = curve
    return out


def _one(
    kind: str, forward_func: Callable[..., Tensor], input_ids: Tensor, attributions: Union[Tensor, tuple], **kwargs: Any
) -> FaithfulnessCurve:
    curves = kwargs.pop("curves", None)
    if curves is not None:  # one kind, the rest of the caller's curve settings
        kwargs["curves"] = dataclasses.replace(curves, kinds=(kind,)) if isinstance(curves, CurveSettings) else curves
    else:
        kwargs["kinds"] = (kind,)
    return faithfulness_curves(forward_func, input_ids, {"_": attributions}, **kwargs)["_"][kind]


def comprehensiveness(
    forward_func: Callable[..., Tensor],
    input_ids: Tensor,
    attributions: Union[Tensor, Tuple[Tensor, ...]],
    *,
    special_token_ids: Sequence[int],
    removal: Removal,
    **kwargs,
) -> FaithfulnessCurve:
    r"""Comprehensiveness curve: remove the top ``int(len * K)`` tokens; how far does the prediction fall?

    Args:
        forward_func, input_ids, special_token_ids, removal: As :func:`faithfulness_curves`.
        attributions (Tensor or 1-tuple): ``(B, T)``, or ``(B, T, H)`` with ``reduction``.
        **kwargs (Any): ``attention_mask``, ``target``, ``labels``, ``ratios``,
            ``reduction``, ``protected``, ``length``, ``token_type_ids``,
            ``pad_token_id``, ``batch_size``, ``forward_output`` as
            :func:`faithfulness_curves`.

    Returns:
        :class:`FaithfulnessCurve`: ``.mean_drop()`` (higher is better),
        ``.accuracy()`` (with labels; lower is better), ``.aopc()``.

    Example::

        >>> nx = NormXLogit(model)
        >>> scores = nx.attribute(ids, additional_forward_args=(mask,))
        >>> curve = comprehensiveness(nx.forward_func, ids, scores, attention_mask=mask,
        ...                           special_token_ids=(tokenizer.cls_token_id,),
        ...                           removal=tokenizer.mask_token_id)
        >>> curve.aopc()          # mean drop over K = 10..90 %
    """
    return _one(
        "comprehensiveness",
        forward_func,
        input_ids,
        attributions,
        special_token_ids=special_token_ids,
        removal=removal,
        **kwargs,
    )


def sufficiency(
    forward_func: Callable[..., Tensor],
    input_ids: Tensor,
    attributions: Union[Tensor, Tuple[Tensor, ...]],
    *,
    special_token_ids: Sequence[int],
    removal: Removal,
    **kwargs,
) -> FaithfulnessCurve:
    r"""Sufficiency curve: keep only the top ``int(len * K)`` tokens (remove all other removable ones).

    Arguments as :func:`comprehensiveness`.

    Returns:
        :class:`FaithfulnessCurve`: ``.mean_drop()`` (lower is better),
        ``.accuracy()`` (with labels; higher is better), ``.aopc()``.
    """
    return _one(
        "sufficiency",
        forward_func,
        input_ids,
        attributions,
        special_token_ids=special_token_ids,
        removal=removal,
        **kwargs,
    )
