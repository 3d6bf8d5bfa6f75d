r"""Attribution methods behind one calling convention, so metrics, ``compare`` and
the CLI treat NormXLogit and every Captum method alike.

Every method is a callable::

    method(input_ids, attention_mask, target) -> Tensor  # (B, T) float32, pads 0

``input_ids`` and ``attention_mask`` are ``(B, T)``; ``target`` is ``(B,)`` (the
class, or the vocabulary id, each example is explained for). Gradient methods
that return ``(B, T, H)`` are reduced to one score per token with an explicit
``reduction``. Signed methods keep their sign: positive pushes towards
``target``.

Every method the package knows is one row of :data:`METHODS` (a
:class:`MethodSpec`: key, display name, one-line description, builder and
default settings); the CLI, the demo, :func:`captum_normxlogit.compare`, the
experiments and the docs read their method names, descriptions and settings
from it. Keys are matched case-insensitively (:func:`method_key`,
:func:`parse_method_keys`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import torch
from captum.attr import (
    Attribution,
    InputXGradient,
    IntegratedGradients,
    LayerIntegratedGradients,
    Saliency,
)
from torch import Tensor, nn

from captum_normxlogit._core.normxlogit import NormXLogit
from captum_normxlogit._utils.capture import eval_mode
from captum_normxlogit._utils.reduce import reduce_hidden

__all__ = [
    "IG",
    "INPUT_X_GRADIENT",
    "LAYER_IG",
    "LOGAT",
    "METHODS",
    "METHOD_KEYS",
    "NORM",
    "NORMXLOGIT",
    "RANDOM",
    "SALIENCY",
    "AttributionMethod",
    "CaptumMethod",
    "MethodSpec",
    "NormXLogitMethod",
    "RandomMethod",
    "build_method",
    "default_methods",
    "keep_specials_baseline",
    "method_key",
    "method_spec",
    "methods_help",
    "methods_markdown",
    "parse_method_keys",
]

_VARIANTS = ("normxlogit", "logat", "norm")  # keys of the NormXLogit rows of METHODS
_BASELINES = (None, "pad", "zero")


class AttributionMethod:
    r"""A named token-attribution method with the shared calling convention.

    Subclasses implement :meth:`attribute`; calling the object validates the
    shapes, runs it and zeroes pad positions.

    Attributes:
        name (str): Shown in tables, plots and views.
        signed (bool): Whether scores carry a direction (``False`` for norms).
    """

    name: str = "method"
    signed: bool = True

    def attribute(self, input_ids: Tensor, attention_mask: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, input_ids: Tensor, attention_mask: Tensor, target: Tensor) -> Tensor:
        if input_ids.dim() != 2 or input_ids.is_floating_point():
            raise ValueError(f"{self.name}: input_ids must be integer (B, T), got {tuple(input_ids.shape)}.")
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"{self.name}: attention_mask {tuple(attention_mask.shape)} does not match "
                f"input_ids {tuple(input_ids.shape)}."
            )
        target = torch.as_tensor(target, dtype=torch.long, device=input_ids.device).reshape(-1)
        if target.numel() != input_ids.shape[0]:
            raise ValueError(f"{self.name}: need one target per example ({input_ids.shape[0]}), got {target.numel()}.")
        scores = self.attribute(input_ids, attention_mask, target)
        if scores.dim() == 3:
            raise ValueError(f"{self.name} returned (B, T, H); give it a reduction.")
        scores = scores.detach().float()
        mask = attention_mask.to(scores.device).bool()
        return torch.where(mask, scores, torch.zeros_like(scores))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class NormXLogitMethod(AttributionMethod):
    r"""NormXLogit or one of its two ablations from the paper.

    Args:
        nx (NormXLogit): Built on the model being explained.
        variant (str, optional): ``"normxlogit"`` (norm × logit), ``"logat"``
            (the head's logit alone) or ``"norm"`` (the embedding norm alone,
            unsigned, ignores the target). Default: ``"normxlogit"``
        layer (int, optional): Hidden state the head reads (``0..L``); None is
            the last one. Default: None
        target_ids (sequence of int, optional): Maps the class index in
            ``target`` to the head row NormXLogit reads, e.g. the label-word
            vocabulary ids of a causal LM used as a classifier. Default: None
        name (str, optional): Display name. Default: the variant's name.
    """

    def __init__(
        self,
        nx: NormXLogit,
        variant: str = "normxlogit",
        layer: Optional[int] = None,
        target_ids: Optional[Sequence[int]] = None,
        name: Optional[str] = None,
    ) -> None:
        variant = variant.lower()
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {sorted(_VARIANTS)}, got {variant!r}.")
        self.variant = variant
        self.name = name or METHODS[variant].name + ("" if layer is None else f"@{layer}")
        self.signed = variant != NORM.key
        self._nx = NormXLogit(
            nx.model,
            layer=layer,
            multiply_by_inputs=variant == NORMXLOGIT.key,
            adapter=nx.adapter,
            mask_token_id=nx.mask_token_id,
        )
        self._target_ids = None if target_ids is None else torch.as_tensor(list(target_ids), dtype=torch.long)

    def attribute(self, input_ids: Tensor, attention_mask: Tensor, target: Tensor) -> Tensor:
        if self.variant == NORM.key:
            return self._nx.embedding_norm(input_ids, additional_forward_args=(attention_mask,))
        if self._target_ids is not None:
            if int(target.max()) >= len(self._target_ids) or int(target.min()) < 0:
                raise ValueError(f"{self.name}: target {target.tolist()} outside 0..{len(self._target_ids) - 1}.")
            target = self._target_ids.to(target.device)[target]
        return self._nx.attribute(input_ids, target=target, additional_forward_args=(attention_mask,))


def keep_specials_baseline(
    input_ids: Tensor, attention_mask: Tensor, pad_token_id: int, special_token_ids: Sequence[int] = ()
) -> Tensor:
    r"""The usual text baseline: every real token becomes ``pad_token_id``,
    special tokens ([CLS], [SEP], BOS) and pads stay as they are.

    Returns:
        *Tensor* of ids, shape ``(B, T)``.
    """
    keep = ~attention_mask.bool()
    for special in special_token_ids:
        keep |= input_ids == special
    return torch.where(keep, input_ids, torch.full_like(input_ids, pad_token_id))


class CaptumMethod(AttributionMethod):
    r"""Any Captum ``Attribution`` under the shared calling convention.

    The attribution must be built on a forward function taking
    ``(inputs, attention_mask)``, e.g. ``NormXLogit.forward_func``.

    Args:
        name (str): Display name.
        attribution (captum.attr.Attribution): E.g. ``IntegratedGradients(nx.forward_func)``.
        model (nn.Module): The model; its input embedding table turns ids into
            ``inputs_embeds`` when ``inputs="embeds"``, and it runs in eval mode.
        inputs (str, optional): ``"ids"`` passes ``input_ids`` (layer methods
            such as ``LayerIntegratedGradients``); ``"embeds"`` passes the word
            embeddings (``IntegratedGradients``, ``Saliency``, ...). Default: ``"embeds"``
        reduction (str, optional): How ``(B, T, H)`` becomes ``(B, T)``:
            ``"sum"`` (signed), ``"l1"`` (the paper's choice, unsigned) or
            ``"l2"``. Default: ``"l1"``
        baselines (str, optional): None (the method takes none), ``"zero"``
            (all-zero embeddings, Captum's default and the paper's) or
            ``"pad"`` (real tokens → ``pad_token_id``, special tokens kept).
            Default: None
        pad_token_id (int, optional): Needed for ``baselines="pad"``. Default: None
        special_token_ids (sequence of int, optional): Kept in the ``"pad"``
            baseline. Default: ()
        attribute_kwargs (dict, optional): Passed to ``attribution.attribute``,
            e.g. ``{"n_steps": 50, "internal_batch_size": 64}``. Default: None
        keep_positions (callable, optional): ``f(attention_mask (B, T)) ->
            (B, T) bool``: more positions the ``"pad"`` baseline keeps, e.g. a
            prompt template's. Default: None
    """

    def __init__(
        self,
        name: str,
        attribution: Attribution,
        model: nn.Module,
        *,
        inputs: str = "embeds",
        reduction: str = "l1",
        baselines: Optional[str] = None,
        pad_token_id: Optional[int] = None,
        special_token_ids: Sequence[int] = (),
        attribute_kwargs: Optional[Dict[str, Any]] = None,
        keep_positions: Optional[Callable[[Tensor], Tensor]] = None,
    ) -> None:
        if not isinstance(attribution, Attribution):
            raise TypeError(f"{name}: expected a captum.attr.Attribution, got {type(attribution).__name__}.")
        if inputs not in ("ids", "embeds"):
            raise ValueError(f"{name}: inputs must be 'ids' or 'embeds', got {inputs!r}.")
        if baselines not in _BASELINES:
            raise ValueError(f"{name}: baselines must be one of {_BASELINES}, got {baselines!r}.")
        if baselines == "zero" and inputs == "ids":
            raise ValueError(f"{name}: a zero baseline needs inputs='embeds'; token ids have no zero vector.")
        if baselines == "pad" and pad_token_id is None:
            raise ValueError(
                f"{name}: baselines='pad' needs pad_token_id (tokenizer.pad_token_id; for a tokenizer "
                "without one, pass e.g. the EOS id and say so)."
            )
        table = model.get_input_embeddings() if inputs == "embeds" else None
        if inputs == "embeds" and not isinstance(table, nn.Embedding):
            raise ValueError(f"{name}: {type(model).__name__}.get_input_embeddings() is not an nn.Embedding.")
        reduce_hidden(torch.zeros(1, 1, 1), reduction)  # validate the name now
        self.name = name
        self.attribution = attribution
        self.model = model
        self.inputs = inputs
        self.reduction = reduction
        self.baselines = baselines
        self.pad_token_id = pad_token_id
        self.special_token_ids = tuple(special_token_ids)
        self.attribute_kwargs = dict(attribute_kwargs or {})
        self.keep_positions = keep_positions
        self.signed = reduction == "sum" and not isinstance(attribution, Saliency)

    def _baseline(self, input_ids: Tensor, attention_mask: Tensor, inputs: Tensor) -> Optional[Tensor]:
        if self.baselines is None:
            return None
        if self.baselines == "zero":
            return torch.zeros_like(inputs)
        ids = keep_specials_baseline(input_ids, attention_mask, self.pad_token_id, self.special_token_ids)
        if self.keep_positions is not None:
            ids = torch.where(self.keep_positions(attention_mask).bool(), input_ids, ids)
        return ids if self.inputs == "ids" else self.model.get_input_embeddings()(ids).detach()

    def attribute(self, input_ids: Tensor, attention_mask: Tensor, target: Tensor) -> Tensor:
        with eval_mode(self.model):
            if self.inputs == "embeds":
                with torch.no_grad():
                    inputs = self.model.get_input_embeddings()(input_ids).detach()
                inputs.requires_grad_(True)  # Captum would set it anyway, with a warning per call
            else:
                inputs = input_ids
            kwargs = dict(self.attribute_kwargs)
            baseline = self._baseline(input_ids, attention_mask, inputs)
            if baseline is not None:
                kwargs["baselines"] = baseline
            scores = self.attribution.attribute(
                inputs, target=target, additional_forward_args=(attention_mask,), **kwargs
            )
        if isinstance(scores, tuple):
            scores = scores[0]
        return reduce_hidden(scores, self.reduction) if scores.dim() == 3 else scores


class RandomMethod(AttributionMethod):
    r"""Uniform random scores: the baseline every method must beat.

    Each example uses a generator seeded with ``seed`` (as the authors re-seed
    per instance), so a row's scores depend only on its length, not on the
    batch it sits in. Consequently every input of one length gets the same
    order: for template data of equal lengths, draw a seed per item instead
    with :meth:`item_scores`.

    Args:
        seed (int, optional): Default: ``RANDOM.defaults["seed"]``, 12 (the paper's seed)
    """

    signed = False

    def __init__(self, seed: Optional[int] = None) -> None:
        self.name = RANDOM.name
        self.seed = RANDOM.defaults["seed"] if seed is None else seed

    def item_scores(self, indices: Sequence[int], width: int) -> Tensor:
        r"""A fresh draw per item: row ``b`` is seeded with ``seed + indices[b]``
        (e.g. the item's index in the run), so equal-length items get different orders.

        Returns:
            *Tensor* ``(len(indices), width)`` on the CPU.
        """
        rows = []
        for index in indices:
            generator = torch.Generator().manual_seed(self.seed + int(index))
            rows.append(torch.rand(width, generator=generator))
        return torch.stack(rows)

    def attribute(self, input_ids: Tensor, attention_mask: Tensor, target: Tensor) -> Tensor:
        return self.item_scores([0] * input_ids.shape[0], input_ids.shape[1]).to(input_ids.device)


# ----------------------------------------------------------------------------- the method table
@dataclass(frozen=True)
class MethodSpec:
    r"""One row of :data:`METHODS`: everything the package says about one method.

    Attributes:
        key (str): What users pass (``--methods``, ``compare(methods=[...])``);
            lower case, matched case-insensitively.
        name (str): Display name in tables, plots and views.
        short_name (str): For narrow places (a view's row label, a plot legend).
        description (str): One line for ``--help`` and for the notes of
            reports; ``{field}`` placeholders are filled from ``defaults`` (or
            the overrides given to :meth:`describe`).
        builder (callable): ``builder(spec, nx, settings) -> AttributionMethod``,
            ``settings`` being ``defaults`` updated by :func:`build_method`'s arguments.
        defaults (mapping): The method's settings when the caller gives none.
        captum (type, optional): The Captum class behind it; None for the package's own.
    """

    key: str
    name: str
    short_name: str
    description: str
    builder: Callable[["MethodSpec", NormXLogit, Dict[str, Any]], AttributionMethod] = field(repr=False)
    defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    captum: Optional[type] = None

    def describe(self, **overrides: Any) -> str:
        r"""The description with its settings filled in, e.g. ``IG.describe(ig_steps=20)``."""
        return self.description.format(**{**self.defaults, **overrides})

    def build(self, nx: NormXLogit, **settings: Any) -> AttributionMethod:
        r"""This method on ``nx``; ``settings`` as :func:`build_method`'s."""
        return build_method(self.key, nx, **settings)


def _variant(spec: MethodSpec, nx: NormXLogit, s: Dict[str, Any]) -> AttributionMethod:
    return NormXLogitMethod(nx, spec.key, target_ids=s["target_ids"])


def _gradient(spec: MethodSpec, nx: NormXLogit, s: Dict[str, Any]) -> AttributionMethod:
    func = s["forward_func"] or nx.forward_func
    layer = s.get("inputs") == "ids"  # a layer method on the input embedding table
    attribution = spec.captum(func, nx.model.get_input_embeddings()) if layer else spec.captum(func)
    steps = {"n_steps": s["ig_steps"], "internal_batch_size": s["internal_batch_size"]} if "ig_steps" in s else None
    return CaptumMethod(
        spec.name, attribution, nx.model, inputs=s.get("inputs", "embeds"), reduction=s["reduction"],
        baselines=s.get("baselines"), pad_token_id=s["pad_token_id"], special_token_ids=s["special_token_ids"],
        attribute_kwargs=steps, keep_positions=s["keep_positions"],
    )


def _random(spec: MethodSpec, nx: NormXLogit, s: Dict[str, Any]) -> AttributionMethod:
    return RandomMethod(s["seed"])


def _frozen(**settings: Any) -> Mapping[str, Any]:
    return MappingProxyType(settings)


_IG_SETTINGS = dict(ig_steps=50, reduction="l1")  # the paper's reduction for gradient methods
# Captum methods are shown by their class name: Captum's get_name() spaces it out
# ("Integrated Gradients"), while the committed result tables and the views use the class name.
NORMXLOGIT = MethodSpec(
    "normxlogit", NormXLogit.get_name(), NormXLogit.get_name(),
    "each token's input embedding norm x the head's logit read on its last hidden state; one forward pass",
    _variant,
)
LOGAT = MethodSpec(  # the paper's names for NormXLogit's two ablations
    "logat", "LogAt", "LogAt", "the head's logit on every token's last hidden state alone (NormXLogit's ablation, signed)",
    _variant,
)
NORM = MethodSpec(
    "norm", "Norm", "Norm", "the input embedding norm alone (NormXLogit's ablation; unsigned, ignores the target)",
    _variant,
)
IG = MethodSpec(
    "ig", IntegratedGradients.__name__, "IG",
    "IntegratedGradients on the input embeddings from an all-zero baseline, {ig_steps} steps",
    _gradient, _frozen(**_IG_SETTINGS, inputs="embeds", baselines="zero"), IntegratedGradients,
)
LAYER_IG = MethodSpec(
    "layer_ig", LayerIntegratedGradients.__name__, "LayerIG",
    "LayerIntegratedGradients on the embedding table, baseline = real tokens replaced by the pad token, "
    "{ig_steps} steps",
    _gradient, _frozen(**_IG_SETTINGS, inputs="ids", baselines="pad"), LayerIntegratedGradients,
)
SALIENCY = MethodSpec(
    "saliency", Saliency.__name__, Saliency.__name__, "Saliency = the absolute gradient on the input embeddings (unsigned)",
    _gradient, _frozen(reduction="l1"), Saliency,
)
INPUT_X_GRADIENT = MethodSpec(
    "inputxgradient", InputXGradient.__name__, InputXGradient.__name__, "InputXGradient on the input embeddings",
    _gradient, _frozen(reduction="l1"), InputXGradient,
)
RANDOM = MethodSpec(
    "random", "Random", "Random", "uniform random scores, seed {seed}: the baseline every method must beat",
    _random, _frozen(seed=12),  # the paper's seed
)

#: Every method, in the order of the project's comparison tables.
METHODS: Mapping[str, MethodSpec] = MappingProxyType(
    {spec.key: spec for spec in (NORMXLOGIT, LOGAT, NORM, IG, LAYER_IG, SALIENCY, INPUT_X_GRADIENT, RANDOM)}
)
METHOD_KEYS = tuple(METHODS)


def method_key(key: str) -> str:
    r"""The table's key for ``key``, matched case-insensitively (``"IG"`` → ``"ig"``).

    Raises:
        ValueError: If no method has that key; the message lists the keys.
    """
    found = key.strip().lower() if isinstance(key, str) else None
    if found not in METHODS:
        raise ValueError(f"Unknown method {key!r}; choose from {', '.join(METHOD_KEYS)} (case-insensitive).")
    return found


def method_spec(key: str) -> MethodSpec:
    r"""The :class:`MethodSpec` of ``key`` (case-insensitive); raises as :func:`method_key`."""
    return METHODS[method_key(key)]


def parse_method_keys(spec: Union[str, Sequence[str]]) -> List[str]:
    r"""A comma-separated list of method keys, e.g. ``"normxlogit,IG"``, as the CLI takes
    it (or a sequence of keys), matched case-insensitively.

    Returns:
        list of str: The table's keys in order, duplicates dropped.

    Raises:
        ValueError: If the list is empty or holds a key outside :data:`METHOD_KEYS`.
    """
    parts = spec.split(",") if isinstance(spec, str) else [str(k) for k in spec]
    given = list(dict.fromkeys(k.strip() for k in parts if k.strip()))
    unknown = [k for k in given if k.lower() not in METHODS]
    if unknown or not given:
        where = f"--methods {spec!r}" if isinstance(spec, str) else f"methods {list(spec)!r}"
        raise ValueError(
            f"{where}: unknown {unknown or 'empty list'}; choose from {', '.join(METHOD_KEYS)} (case-insensitive)."
        )
    return list(dict.fromkeys(k.lower() for k in given))


def methods_help(indent: int = 2, **overrides: Any) -> str:
    r"""The table as help text: one ``key  description`` line per method, e.g. for ``--help``."""
    width = max(len(k) for k in METHOD_KEYS)
    return "\n".join(f"{' ' * indent}{spec.key:<{width}}  {spec.describe(**overrides)}" for spec in METHODS.values())


def methods_markdown() -> str:
    r"""The table as a Markdown table (key, display name, description with its defaults), for the docs."""
    lines = ["| key | name | what it computes |", "|---|---|---|"]
    lines += [f"| `{spec.key}` | {spec.name} | {spec.describe()} |" for spec in METHODS.values()]
    return "\n".join(lines)


def build_method(
    key: str,
    nx: NormXLogit,
    *,
    pad_token_id: Optional[int] = None,
    special_token_ids: Sequence[int] = (),
    forward_func: Optional[Callable[..., Tensor]] = None,
    target_ids: Optional[Sequence[int]] = None,
    ig_steps: Optional[int] = None,
    internal_batch_size: Optional[int] = None,
    reduction: Optional[str] = None,
    seed: Optional[int] = None,
    keep_positions: Optional[Callable[[Tensor], Tensor]] = None,
) -> AttributionMethod:
    r"""Build one method by key, configured the way the project compares them.

    Settings left at None take the method's row of :data:`METHODS` (``defaults``).

    Args:
        key (str): One of :data:`METHOD_KEYS`, case-insensitive.
        nx (NormXLogit): Built on the model being explained.
        pad_token_id (int, optional): For LayerIntegratedGradients' baseline
            (real tokens → pad, specials kept). Default: None
        special_token_ids (sequence of int, optional): Kept in that baseline. Default: ()
        forward_func (callable, optional): What the Captum methods explain,
            ``f(inputs, attention_mask) -> (B, C)``. Default: ``nx.forward_func``
        target_ids (sequence of int, optional): Class index → NormXLogit head
            row, for a ``forward_func`` whose classes are label words. Default: None
        ig_steps (int, optional): Integrated Gradients steps. Default: None (50, the table's)
        internal_batch_size (int, optional): Integrated Gradients' internal
            batch size. Default: None (all steps at once)
        reduction (str, optional): ``(B, T, H)`` → ``(B, T)`` for gradient
            methods. Default: None (``"l1"``, the table's and the paper's)
        seed (int, optional): For ``random``. Default: None (12, the table's)
        keep_positions (callable, optional): More positions LayerIntegratedGradients'
            baseline keeps (see :class:`CaptumMethod`). Default: None

    Returns:
        AttributionMethod
    """
    spec = method_spec(key)
    given = dict(ig_steps=ig_steps, reduction=reduction, seed=seed)
    settings: Dict[str, Any] = dict(spec.defaults)
    settings.update({name: value for name, value in given.items() if value is not None and name in spec.defaults})
    settings.update(pad_token_id=pad_token_id, special_token_ids=tuple(special_token_ids), forward_func=forward_func,
                    target_ids=target_ids, internal_batch_size=internal_batch_size, keep_positions=keep_positions)
    return spec.builder(spec, nx, settings)


def default_methods(nx: NormXLogit, **kwargs: Any) -> List[AttributionMethod]:
    r"""Every method of :data:`METHODS`, in its order (the project's comparison).

    Args:
        nx (NormXLogit): Built on the model being explained.
        **kwargs: As :func:`build_method`.

    Returns:
        list of AttributionMethod
    """
    return [build_method(key, nx, **kwargs) for key in METHOD_KEYS]
