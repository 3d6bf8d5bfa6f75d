r"""Attribution methods behind one calling convention, so metrics, ``compare`` and
the CLI treat NormXLogit and every Captum method alike.

Every method is a callable::

    method(input_ids, attention_mask, target) -> Tensor  # (B, T) float32, pads 0

``input_ids`` and ``attention_mask`` are ``(B, T)``; ``target`` is ``(B,)`` (the
class, or the vocabulary id, each example is explained for). Gradient methods
that return ``(B, T, H)`` are reduced to one score per token with an explicit
``reduction``. Signed methods keep their sign: positive pushes towards
``target``.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence

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
    "METHOD_KEYS",
    "AttributionMethod",
    "CaptumMethod",
    "NormXLogitMethod",
    "RandomMethod",
    "build_method",
    "default_methods",
    "keep_specials_baseline",
    "parse_method_keys",
]

_VARIANTS = {"normxlogit": "NormXLogit", "logat": "LogAt", "norm": "Norm"}
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
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {sorted(_VARIANTS)}, got {variant!r}.")
        self.variant = variant
        self.name = name or _VARIANTS[variant] + ("" if layer is None else f"@{layer}")
        self.signed = variant != "norm"
        self._nx = NormXLogit(
            nx.model,
            layer=layer,
            multiply_by_inputs=variant == "normxlogit",
            adapter=nx.adapter,
            mask_token_id=nx.mask_token_id,
        )
        self._target_ids = None if target_ids is None else torch.as_tensor(list(target_ids), dtype=torch.long)

    def attribute(self, input_ids: Tensor, attention_mask: Tensor, target: Tensor) -> Tensor:
        if self.variant == "norm":
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
        self.signed = reduction == "sum" and not isinstance(attribution, Saliency)

    def _baseline(self, input_ids: Tensor, attention_mask: Tensor, inputs: Tensor) -> Optional[Tensor]:
        if self.baselines is None:
            return None
        if self.baselines == "zero":
            return torch.zeros_like(inputs)
        ids = keep_specials_baseline(input_ids, attention_mask, self.pad_token_id, self.special_token_ids)
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
    order: for template data of equal lengths, draw a seed per item instead.

    Args:
        seed (int, optional): Default: 12 (the paper's seed)
    """

    name = "Random"
    signed = False

    def __init__(self, seed: int = 12) -> None:
        self.seed = seed

    def attribute(self, input_ids: Tensor, attention_mask: Tensor, target: Tensor) -> Tensor:
        rows = []
        for _ in range(input_ids.shape[0]):
            generator = torch.Generator().manual_seed(self.seed)
            rows.append(torch.rand(input_ids.shape[1], generator=generator))
        return torch.stack(rows).to(input_ids.device)


METHOD_KEYS = ("normxlogit", "logat", "norm", "ig", "layer_ig", "saliency", "inputxgradient", "random")


def parse_method_keys(spec: str) -> List[str]:
    r"""A comma-separated list of method keys, e.g. ``"normxlogit,ig"``, as the CLI takes it.

    Returns:
        list of str: The keys in order, duplicates dropped.

    Raises:
        ValueError: If the list is empty or holds a key outside :data:`METHOD_KEYS`.
    """
    keys = list(dict.fromkeys(k.strip() for k in spec.split(",") if k.strip()))
    unknown = [k for k in keys if k not in METHOD_KEYS]
    if unknown or not keys:
        raise ValueError(
            f"--methods {spec!r}: unknown {unknown or 'empty list'}; choose from {', '.join(METHOD_KEYS)}."
        )
    return keys


def build_method(
    key: str,
    nx: NormXLogit,
    *,
    pad_token_id: Optional[int] = None,
    special_token_ids: Sequence[int] = (),
    forward_func: Optional[Callable[..., Tensor]] = None,
    target_ids: Optional[Sequence[int]] = None,
    ig_steps: int = 50,
    internal_batch_size: Optional[int] = None,
    reduction: str = "l1",
    seed: int = 12,
) -> AttributionMethod:
    r"""Build one method by key, configured the way the project compares them.

    Args:
        key (str): One of :data:`METHOD_KEYS`.
        nx (NormXLogit): Built on the model being explained.
        pad_token_id (int, optional): For LayerIntegratedGradients' baseline
            (real tokens → pad, specials kept). Default: None
        special_token_ids (sequence of int, optional): Kept in that baseline. Default: ()
        forward_func (callable, optional): What the Captum methods explain,
            ``f(inputs, attention_mask) -> (B, C)``. Default: ``nx.forward_func``
        target_ids (sequence of int, optional): Class index → NormXLogit head
            row, for a ``forward_func`` whose classes are label words. Default: None
        ig_steps (int, optional): Integrated Gradients steps. Default: 50
        internal_batch_size (int, optional): Integrated Gradients' internal
            batch size. Default: None (all steps at once)
        reduction (str, optional): ``(B, T, H)`` → ``(B, T)`` for gradient
            methods; ``"l1"`` as the paper. Default: ``"l1"``
        seed (int, optional): For ``random``. Default: 12

    Returns:
        AttributionMethod
    """
    if key not in METHOD_KEYS:
        raise ValueError(f"Unknown method {key!r}; choose from {', '.join(METHOD_KEYS)}.")
    if key in _VARIANTS:
        return NormXLogitMethod(nx, key, target_ids=target_ids)
    if key == "random":
        return RandomMethod(seed)
    func = forward_func or nx.forward_func
    model = nx.model
    ig_kwargs = {"n_steps": ig_steps, "internal_batch_size": internal_batch_size}
    if key == "ig":
        return CaptumMethod(
            "IntegratedGradients", IntegratedGradients(func), model,
            reduction=reduction, baselines="zero", attribute_kwargs=ig_kwargs,
        )
    if key == "layer_ig":
        layer = LayerIntegratedGradients(func, model.get_input_embeddings())
        return CaptumMethod(
            "LayerIntegratedGradients", layer, model, inputs="ids", reduction=reduction, baselines="pad",
            pad_token_id=pad_token_id, special_token_ids=special_token_ids, attribute_kwargs=ig_kwargs,
        )
    if key == "saliency":
        return CaptumMethod("Saliency", Saliency(func), model, reduction=reduction)
    return CaptumMethod("InputXGradient", InputXGradient(func), model, reduction=reduction)


def default_methods(nx: NormXLogit, **kwargs: Any) -> List[AttributionMethod]:
    r"""Every method of the project's comparison, in its table order: NormXLogit,
    LogAt, Norm, IntegratedGradients, LayerIntegratedGradients, Saliency,
    InputXGradient, Random.

    Args:
        nx (NormXLogit): Built on the model being explained.
        **kwargs: As :func:`build_method`.

    Returns:
        list of AttributionMethod
    """
    return [build_method(key, nx, **kwargs) for key in METHOD_KEYS]
