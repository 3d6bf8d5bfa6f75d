r"""Ranking and removing tokens for the faithfulness metrics (see :mod:`.faithfulness`)."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from captum_normxlogit._utils.checks import Removal, check_removal
from captum_normxlogit._utils.padding import is_right_padded
from captum_normxlogit._utils.reduce import reduce_hidden

__all__ = ["KINDS", "Removal", "bool_mask", "perturb_tokens", "removal_masks", "token_scores"]

KINDS = ("comprehensiveness", "sufficiency")
_LENGTHS = ("all", "removable")


def token_scores(attributions: Union[Tensor, Tuple[Tensor, ...]], reduction: Optional[str] = None) -> Tensor:
    r"""One score per token from any Captum-shaped attribution.

    Args:
        attributions (Tensor or 1-tuple): ``(B, T)`` (NormXLogit) or
            ``(B, T, H)`` (gradient methods on embeddings).
        reduction (str, optional): Required for ``(B, T, H)``: ``"sum"``
            (signed), ``"l1"`` (the paper's choice) or ``"l2"``; must be None
            for ``(B, T)``. Default: None

    Returns:
        *Tensor* ``(B, T)`` float64 on the CPU. Higher means "more important"
        (ranked, and so removed, first).
    """
    if isinstance(attributions, tuple):
        if len(attributions) != 1:
            raise ValueError(f"attributions is a tuple of {len(attributions)} tensors; pass a tensor or a 1-tuple.")
        attributions = attributions[0]
    if not isinstance(attributions, Tensor):
        raise TypeError(f"attributions must be a torch.Tensor, got {type(attributions).__name__}.")
    if attributions.dim() == 3:
        if reduction is None:
            raise ValueError(
                f"attributions of shape {tuple(attributions.shape)} are per hidden dimension (B, T, H): pass "
                "reduction='l1' (the paper's choice), 'l2' or 'sum' to get one score per token."
            )
        attributions = reduce_hidden(attributions, reduction)
    elif attributions.dim() != 2:
        raise ValueError(f"attributions must have shape (B, T) or (B, T, H), got {tuple(attributions.shape)}.")
    elif reduction is not None:
        raise ValueError(f"reduction={reduction!r} applies only to (B, T, H) attributions; these are (B, T).")
    if attributions.shape[0] == 0 or attributions.shape[1] == 0:
        raise ValueError(f"attributions hold no tokens (shape {tuple(attributions.shape)}).")
    scores = attributions.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("attributions contain NaN or infinite values; rankings need finite scores.")
    return scores


def bool_mask(name: str, value: Optional[Tensor], shape: Tuple[int, ...]) -> Tensor:
    if value is None:
        return torch.zeros(shape, dtype=torch.bool)
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(value.shape)}, expected {tuple(shape)} (B, T).")
    return value.detach().to("cpu").bool()


def removal_masks(
    scores: Tensor,
    attention_mask: Tensor,
    ratios: Sequence[float],
    kind: str,
    protected: Optional[Tensor] = None,
    length: str = "all",
) -> Tensor:
    r"""Which positions each ratio removes.

    Args:
        scores (Tensor): ``(B, T)`` token scores (see :func:`token_scores`);
            ties are broken towards the earlier position.
        attention_mask (Tensor): ``(B, T)``, 1 for real tokens, 0 for pads.
        ratios (sequence of float): Ratios ``K`` in ``[0, 1]``.
        kind (str): ``"comprehensiveness"`` (remove the top ``int(len * K)``)
            or ``"sufficiency"`` (remove every removable token but those).
        protected (Tensor, optional): ``(B, T)`` bool, positions that are never
            ranked nor removed ([CLS], BOS, a prompt). Default: None
        length (str, optional): What ``len`` counts: ``"all"`` real tokens,
            protected ones included (the authors' code), or only the
            ``"removable"`` ones (for inputs wrapped in a prompt). The count is
            capped at the number of removable tokens. Default: ``"all"``

    Returns:
        *Tensor* ``(K, B, T)`` bool, True where the token is removed.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    if length not in _LENGTHS:
        raise ValueError(f"length must be one of {_LENGTHS}, got {length!r}.")
    bad = [r for r in ratios if not 0.0 <= float(r) <= 1.0]
    if bad or not len(ratios):
        raise ValueError(f"ratios must be a non-empty sequence of numbers in [0, 1], got {list(ratios)}.")
    if scores.dim() != 2:
        raise ValueError(f"scores must be (B, T), got {tuple(scores.shape)}.")
    real = bool_mask("attention_mask", attention_mask, tuple(scores.shape))
    removable = real & ~bool_mask("protected", protected, tuple(scores.shape))
    if not bool(torch.isfinite(scores[removable]).all()):
        raise ValueError("attributions contain NaN or infinite values at real tokens; they cannot be ranked.")
    # Stable descending sort: equal scores keep position order. Non-removable slots sort last.
    ranked = torch.where(removable, scores.double(), torch.full_like(scores, float("-inf"), dtype=torch.float64))
    order = torch.sort(ranked, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(scores.shape[1]).expand_as(order).contiguous())
    lengths = (real if length == "all" else removable).sum(-1).tolist()
    n_removable = removable.sum(-1)
    masks = []
    for ratio in ratios:
        # int(len * K) on Python floats, exactly as the authors' code computes it.
        top = torch.tensor([int(n * float(ratio)) for n in lengths]).clamp(max=n_removable)
        in_top = rank < top[:, None]
        masks.append(removable & (in_top if kind == "comprehensiveness" else ~in_top))
    return torch.stack(masks)


# ----------------------------------------------------------------------------- perturbation
def perturb_tokens(
    input_ids: Tensor,
    attention_mask: Tensor,
    remove: Tensor,
    removal: Removal,
    token_type_ids: Optional[Tensor] = None,
    pad_token_id: Optional[int] = None,
) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    r"""Remove tokens from a batch.

    Args:
        input_ids (Tensor): ``(B, T)`` token ids.
        attention_mask (Tensor): ``(B, T)``, 1 for real tokens.
        remove (Tensor): ``(B, T)`` bool, the tokens to remove (real ones only).
        removal (int or str): An int replaces the removed ids with it (the
            paper: ``tokenizer.mask_token_id``), keeping positions and the
            attention mask. ``"delete"`` drops them and closes the gap, on the
            side away from the padding.
        token_type_ids (Tensor, optional): ``(B, T)``, moved with the tokens on
            deletion. Default: None
        pad_token_id (int, optional): Fills the slots deletion frees; taken
            from the batch's own pad positions when None. Default: None

    Returns:
        ``(input_ids, attention_mask, token_type_ids)`` of the same shape, new tensors.
    """
    check_removal(removal)
    remove = remove.to(input_ids.device).bool() & attention_mask.bool()
    if removal != "delete":
        ids = torch.where(remove, torch.full_like(input_ids, int(removal)), input_ids)
        return ids, attention_mask.clone(), None if token_type_ids is None else token_type_ids.clone()
    keep = attention_mask.bool() & ~remove
    empty = (~keep.any(-1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"Deleting would leave examples {empty} with no tokens at all; protect at least one token "
            "(special_token_ids / protected) or replace tokens instead of deleting them."
        )
    if pad_token_id is None:
        found = input_ids[~attention_mask.bool()].unique()
        if len(found) > 1 or (len(found) == 0 and bool(remove.any())):
            raise ValueError("Deletion needs pad_token_id: the batch has no single pad id to refill freed slots with.")
        pad_token_id = int(found[0]) if len(found) else 0
    batch, width = input_ids.shape
    n_keep = keep.sum(-1, keepdim=True)
    slot = keep.long().cumsum(-1) - 1 + torch.where(~is_right_padded(attention_mask)[:, None], width - n_keep, 0)
    slot = torch.where(keep, slot, torch.full_like(slot, width))  # dropped tokens go to a spare column

    def compact(values: Tensor, fill: int) -> Tensor:
        out = torch.full((batch, width + 1), fill, dtype=values.dtype, device=values.device)
        return out.scatter_(1, slot, values)[:, :width]

    types = None if token_type_ids is None else compact(token_type_ids, 0)
    return compact(input_ids, pad_token_id), compact(keep.to(attention_mask.dtype), 0), types
