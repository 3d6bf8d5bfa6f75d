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
:func:`parse_method_keys`). The convention's base class and the Captum wrapper
live in ``_core/methods.py`` and are exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import torch
from captum.attr import InputXGradient, IntegratedGradients, LayerIntegratedGradients, Saliency
from torch import Tensor

from captum_normxlogit._core.methods import AttributionMethod, CaptumMethod, keep_specials_baseline
from captum_normxlogit._core.normxlogit import NormXLogit
from captum_normxlogit._utils.capture import eval_mode

__all__ = [
    "CONTRASTS",
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
#: What a NormXLogit score may be contrasted with (``contrast=``): the most probable other class.
CONTRASTS = ("runner_up",)


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
        contrast (str, optional): ``"runner_up"`` scores the target against the
            most probable other class of the same model, every token's
            ``||x_i^0|| * (HoT(x_i)[target] - HoT(x_i)[foil])`` from one pass
            (NormXLogit's ``foil=``; for two classes simply target minus the other
            class). Not for ``"norm"`` nor with ``target_ids``. Default: None
    """

    def __init__(
        self,
        nx: NormXLogit,
        variant: str = "normxlogit",
        layer: Optional[int] = None,
        target_ids: Optional[Sequence[int]] = None,
        name: Optional[str] = None,
        contrast: Optional[str] = None,
    ) -> None:
        variant = variant.lower()
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {sorted(_VARIANTS)}, got {variant!r}.")
        if contrast is not None and contrast not in CONTRASTS:
            raise ValueError(f"contrast must be None or one of {CONTRASTS}, got {contrast!r}.")
        if contrast is not None and (variant == NORM.key or target_ids is not None):
            raise ValueError(f"contrast={contrast!r} needs a target logit to contrast: not for norm nor target_ids.")
        self.variant, self.contrast = variant, contrast
        suffix = ("" if layer is None else f"@{layer}") + (" (target − runner-up)" if contrast else "")
        self.name = name or METHODS[variant].name + suffix
        self.signed = variant != NORM.key
        self._n_classes = nx.adapter.num_outputs
        self._nx = NormXLogit(
            nx.model,
            layer=layer,
            multiply_by_inputs=variant == NORMXLOGIT.key,
            adapter=nx.adapter,
            mask_token_id=nx.mask_token_id,
        )
        self._target_ids = None if target_ids is None else torch.as_tensor(list(target_ids), dtype=torch.long)

    def attribute(self, input_ids: Tensor, attention_mask: Tensor, target: Tensor) -> Tensor:
        r"""NormXLogit's scores for ``variant``: norm × logit, the logit alone, or the
        embedding norm alone (which ignores ``target``).

        Args:
            input_ids (Tensor): Token ids, shape ``(B, T)``.
            attention_mask (Tensor): 1 for real tokens, 0 for pads, shape ``(B, T)``.
            target (Tensor): The class per example, shape ``(B,)``; with ``target_ids``
                an index into it, else the head row itself.

        Returns:
            *Tensor* of scores, shape ``(B, T)`` (pads not yet zeroed: call the object).

        Raises:
            ValueError: A target outside ``0..len(target_ids) - 1``.
        """
        if self.variant == NORM.key:
            norm = self._nx.embedding_norm(input_ids, additional_forward_args=(attention_mask,))
            assert isinstance(norm, Tensor)  # ids as one tensor give one tensor back
            return norm
        if self._target_ids is not None:
            if int(target.max()) >= len(self._target_ids) or int(target.min()) < 0:
                raise ValueError(f"{self.name}: target {target.tolist()} outside 0..{len(self._target_ids) - 1}.")
            target = self._target_ids.to(target.device)[target]
        foil = None if self.contrast is None else self._runner_up(input_ids, attention_mask, target)
        return self._nx.attribute(input_ids, target=target, additional_forward_args=(attention_mask,), foil=foil)

    def _runner_up(self, input_ids: Tensor, attention_mask: Tensor, target: Tensor) -> Tensor:
        r"""The most probable class other than ``target``, per example, ``(B,)``."""
        if self._n_classes == 2:
            return 1 - target  # no pass needed to know the other class
        with torch.no_grad(), eval_mode(self._nx.model):
            logits = self._nx.forward_func(input_ids, attention_mask).float()
        logits[torch.arange(len(target)), target] = float("-inf")
        return logits.argmax(-1)


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
        r"""Uniform scores in ``[0, 1)``, every row drawn with ``seed`` (``target`` is ignored).

        Args:
            input_ids (Tensor): Token ids, shape ``(B, T)``; only its shape and device are used.
            attention_mask (Tensor): Shape ``(B, T)``; unused here (calling the object zeroes pads).
            target (Tensor): Shape ``(B,)``; unused.

        Returns:
            *Tensor* of scores, shape ``(B, T)``, on ``input_ids``' device.
        """
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
    return NormXLogitMethod(nx, spec.key, target_ids=s["target_ids"], contrast=s.get("contrast"))


def _gradient(spec: MethodSpec, nx: NormXLogit, s: Dict[str, Any]) -> AttributionMethod:
    assert spec.captum is not None  # every gradient spec names its Captum class
    func = s["forward_func"] or nx.forward_func
    layer = s.get("inputs") == "ids"  # a layer method on the input embedding table
    if layer:  # get_input_embeddings: a Hugging Face method that nn.Module's typing does not know
        attribution = spec.captum(func, nx.model.get_input_embeddings())  # type: ignore[operator]
    else:
        attribution = spec.captum(func)
    steps = {"n_steps": s["ig_steps"], "internal_batch_size": s["internal_batch_size"]} if "ig_steps" in s else None
    return CaptumMethod(
        spec.name,
        attribution,
        nx.model,
        inputs=s.get("inputs", "embeds"),
        reduction=s["reduction"],
        baselines=s.get("baselines"),
        pad_token_id=s["pad_token_id"],
        special_token_ids=s["special_token_ids"],
        attribute_kwargs=steps,
        keep_positions=s["keep_positions"],
    )


def _random(spec: MethodSpec, nx: NormXLogit, s: Dict[str, Any]) -> AttributionMethod:
    return RandomMethod(s["seed"])


def _frozen(**settings: Any) -> Mapping[str, Any]:
    return MappingProxyType(settings)


_IG_SETTINGS = dict(ig_steps=50, reduction="l1")  # the paper's reduction for gradient methods
# Captum methods are shown by their class name: Captum's get_name() spaces it out
# ("Integrated Gradients"), while the committed result tables and the views use the class name.
NORMXLOGIT = MethodSpec(
    "normxlogit",
    NormXLogit.get_name(),
    NormXLogit.get_name(),
    "each token's input embedding norm x the head's logit read on its last hidden state; one forward pass",
    _variant,
    _frozen(contrast=None),  # "runner_up": target minus the most probable other class
)
LOGAT = MethodSpec(  # the paper's names for NormXLogit's two ablations
    "logat",
    "LogAt",
    "LogAt",
    "the head's logit on every token's last hidden state alone (NormXLogit's ablation, signed)",
    _variant,
    _frozen(contrast=None),
)
NORM = MethodSpec(
    "norm",
    "Norm",
    "Norm",
    "the input embedding norm alone (NormXLogit's ablation; unsigned, ignores the target)",
    _variant,
)
IG = MethodSpec(
    "ig",
    IntegratedGradients.__name__,
    "IG",
    "IntegratedGradients on the input embeddings from an all-zero baseline, {ig_steps} steps",
    _gradient,
    _frozen(**_IG_SETTINGS, inputs="embeds", baselines="zero"),
    IntegratedGradients,
)
LAYER_IG = MethodSpec(
    "layer_ig",
    LayerIntegratedGradients.__name__,
    "LayerIG",
    "LayerIntegratedGradients on the embedding table, baseline = real tokens replaced by the pad token, "
    "{ig_steps} steps",
    _gradient,
    _frozen(**_IG_SETTINGS, inputs="ids", baselines="pad"),
    LayerIntegratedGradients,
)
SALIENCY = MethodSpec(
    "saliency",
    Saliency.__name__,
    Saliency.__name__,
    "Saliency = the absolute gradient on the input embeddings (unsigned)",
    _gradient,
    _frozen(reduction="l1"),
    Saliency,
)
INPUT_X_GRADIENT = MethodSpec(
    "inputxgradient",
    InputXGradient.__name__,
    InputXGradient.__name__,
    "InputXGradient on the input embeddings",
    _gradient,
    _frozen(reduction="l1"),
    InputXGradient,
)
RANDOM = MethodSpec(
    "random",
    "Random",
    "Random",
    "uniform random scores, seed {seed}: the baseline every method must beat",
    _random,
    _frozen(seed=12),  # the paper's seed
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
    contrast: Optional[str] = None,
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
        contrast (str, optional): For ``normxlogit`` and ``logat``:
            ``"runner_up"`` scores the target against the most probable other
            class (see :class:`NormXLogitMethod`). Default: None

    Returns:
        AttributionMethod
    """
    spec = method_spec(key)
    given = dict(ig_steps=ig_steps, reduction=reduction, seed=seed, contrast=contrast)
    if contrast is not None and "contrast" not in spec.defaults:
        raise ValueError(f"contrast={contrast!r} applies to {NORMXLOGIT.key!r} and {LOGAT.key!r}, not {spec.key!r}.")
    settings: Dict[str, Any] = dict(spec.defaults)
    settings.update({name: value for name, value in given.items() if value is not None and name in spec.defaults})
    settings.update(
        pad_token_id=pad_token_id,
        special_token_ids=tuple(special_token_ids),
        forward_func=forward_func,
        target_ids=target_ids,
        internal_batch_size=internal_batch_size,
        keep_positions=keep_positions,
    )
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
