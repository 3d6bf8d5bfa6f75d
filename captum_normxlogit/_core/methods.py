r"""The calling convention every attribution method of the package shares, and Captum's methods under it.

Every method is a callable::

    method(input_ids, attention_mask, target) -> Tensor  # (B, T) float32, pads 0

:class:`AttributionMethod` checks the shapes and zeroes pads; :class:`CaptumMethod`
runs any Captum ``Attribution`` that way. The table of named methods is
:mod:`captum_normxlogit.methods`, which exports both.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence

import torch
from captum.attr import Attribution, Saliency
from torch import Tensor, nn

from captum_normxlogit._utils.capture import eval_mode
from captum_normxlogit._utils.reduce import reduce_hidden

__all__ = ["AttributionMethod", "CaptumMethod", "keep_specials_baseline"]

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
        r"""The method's raw scores; subclasses implement it. Call the object instead,
        which checks the shapes first and zeroes the pads afterwards.

        Args:
            input_ids (Tensor): Token ids, shape ``(B, T)``.
            attention_mask (Tensor): 1 for real tokens, 0 for pads, shape ``(B, T)``.
            target (Tensor): The class (or vocabulary id) each example is explained
                for, shape ``(B,)``, long, on ``input_ids``' device.

        Returns:
            *Tensor* of scores, shape ``(B, T)``; pad positions may hold anything.
        """
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
        # a Hugging Face method that nn.Module's typing does not know
        table = model.get_input_embeddings() if inputs == "embeds" else None  # type: ignore[operator]
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
        assert self.pad_token_id is not None  # __init__ refuses baselines="pad" without it
        ids = keep_specials_baseline(input_ids, attention_mask, self.pad_token_id, self.special_token_ids)
        if self.keep_positions is not None:
            ids = torch.where(self.keep_positions(attention_mask).bool(), input_ids, ids)
        return ids if self.inputs == "ids" else self._embed(ids).detach()

    def _embed(self, input_ids: Tensor) -> Tensor:
        # get_input_embeddings is a Hugging Face method that nn.Module's typing does not know;
        # __init__ checked that it returns an nn.Embedding when inputs="embeds".
        return self.model.get_input_embeddings()(input_ids)  # type: ignore[operator]

    def attribute(self, input_ids: Tensor, attention_mask: Tensor, target: Tensor) -> Tensor:
        r"""Run the Captum attribution in eval mode on ids or word embeddings (``inputs``),
        with the chosen baseline and ``attribute_kwargs``, and reduce ``(B, T, H)`` scores
        with ``reduction``.

        Args:
            input_ids (Tensor): Token ids, shape ``(B, T)``.
            attention_mask (Tensor): 1 for real tokens, 0 for pads, shape ``(B, T)``;
                passed to the forward function.
            target (Tensor): The class (or vocabulary id) per example, shape ``(B,)``.

        Returns:
            *Tensor* of scores, shape ``(B, T)`` (pads not yet zeroed: call the object).
        """
        with eval_mode(self.model):
            if self.inputs == "embeds":
                with torch.no_grad():
                    inputs = self._embed(input_ids).detach()
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
