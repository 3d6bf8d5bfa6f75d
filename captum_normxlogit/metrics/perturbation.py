r"""Token removal as a perturbation for ``captum.metrics.infidelity``.

Captum's ``infidelity`` needs a ``perturb_func(inputs) -> (perturbation, perturbed_inputs)``; its
examples add Gaussian noise to continuous inputs, which means nothing for token ids. For a token
attribution such as NormXLogit's ``(B, T)`` scores, the perturbation of a global method is a
binary removal (Captum's docs: "for global methods ... binary perturbation"): ``perturbation``
is 1 where a token was replaced by ``replacement_id`` and 0 elsewhere, so ``infidelity``
compares ``sum_i score_i * removed_i`` with the drop of the explained output.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional, Tuple

import torch
from torch import Tensor

__all__ = ["token_removal_perturbation"]

PerturbFunc = Callable[[Tensor], Tuple[Tensor, Tensor]]


def token_removal_perturbation(
    replacement_id: int,
    *,
    probability: float = 0.3,
    protected_ids: Iterable[int] = (),
    seed: Optional[int] = None,
) -> PerturbFunc:
    r"""A ``perturb_func`` for ``captum.metrics.infidelity`` on token ids: each call removes a
    random subset of the tokens (replaces them with ``replacement_id``).

    Example::

        from captum.metrics import infidelity
        from captum_normxlogit.metrics import token_removal_perturbation

        perturb = token_removal_perturbation(tokenizer.mask_token_id, protected_ids=tokenizer.all_special_ids,
                                             seed=0)
        scores = nx.attribute(ids, target=target, additional_forward_args=(mask,))      # (B, T)
        value = infidelity(nx.forward_func, perturb, ids, scores, additional_forward_args=(mask,),
                           target=target, n_perturb_samples=10, normalize=True)          # (B,)

    Args:
        replacement_id (int): The id a removed token becomes: ``[MASK]`` for a
            masked-LM encoder (as the paper's BERT protocol), else e.g. the pad id.
        probability (float, optional): Chance that each removable token is removed,
            in ``(0, 1)``. Default: 0.3
        protected_ids (iterable of int, optional): Ids never removed, e.g.
            ``tokenizer.all_special_ids`` (``[CLS]``, ``[SEP]`` and the padding,
            whose score is not an explanation of the text). A token already equal
            to ``replacement_id`` is never counted as removed. Default: ()
        seed (int, optional): Seeds the function's own ``torch.Generator``, so the
            sequence of draws (and so ``infidelity``'s value) is reproducible; the
            global random state is not touched. Default: None (torch's global generator)

    Returns:
        Callable: ``perturb(inputs) -> (perturbation, perturbed_inputs)`` for ``inputs``
        of shape ``(N, T)`` (integer ids; ``infidelity`` passes the batch repeated
        ``n_perturb_samples`` times): ``perturbation`` is float32 ``(N, T)``, 1 where a
        token was removed; ``perturbed_inputs`` is ``inputs`` with those tokens
        replaced, same dtype and device.
    """
    if isinstance(replacement_id, bool) or not isinstance(replacement_id, int):
        raise TypeError(f"replacement_id must be a token id (int), got {type(replacement_id).__name__}.")
    if not 0.0 < float(probability) < 1.0:
        raise ValueError(f"probability must be in (0, 1), got {probability}: the share of tokens each call removes.")
    protected = torch.tensor(sorted({int(i) for i in protected_ids}), dtype=torch.long)
    generator = None if seed is None else torch.Generator().manual_seed(int(seed))

    def perturb(inputs: Tensor) -> Tuple[Tensor, Tensor]:
        if not isinstance(inputs, Tensor) or inputs.dim() != 2 or inputs.is_floating_point() or inputs.is_complex():
            shape = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
            raise ValueError(
                f"token_removal_perturbation takes integer token ids of shape (N, T), got {shape}"
                + (f" of {inputs.dtype}" if isinstance(inputs, Tensor) else "")
                + "; pass the ids as infidelity's inputs (not embeddings)."
            )
        draw = torch.rand(inputs.shape, generator=generator).to(inputs.device)
        removable = ~torch.isin(inputs, protected.to(inputs.device)) & (inputs != replacement_id)
        removed = (draw < probability) & removable
        perturbed = torch.where(removed, torch.full_like(inputs, replacement_id), inputs)
        return removed.to(torch.float32), perturbed

    return perturb
