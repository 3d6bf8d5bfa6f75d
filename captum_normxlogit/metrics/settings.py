r"""The settings of the removal metrics, grouped: how tokens are removed, and which curves are drawn.

:func:`~captum_normxlogit.metrics.faithfulness_curves` (and
:func:`~captum_normxlogit.compare`, for its perturbations) take these objects
or the same settings as keywords; each default is written once, here.

Example::

    >>> perturbation = Perturbation(removal=tokenizer.mask_token_id, special_token_ids=(tokenizer.cls_token_id,))
    >>> curves = faithfulness_curves(nx.forward_func, ids, {"NormXLogit": scores}, attention_mask=mask,
    ...                              perturbation=perturbation, curves=CurveSettings(ratios=ERASER_RATIOS))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from captum_normxlogit._utils.checks import Removal
from captum_normxlogit.metrics._removal import KINDS

__all__ = ["CurveSettings", "Perturbation"]  # the ratios are exported by .faithfulness

#: K = 0, 10, ..., 100 %: the NormXLogit authors' ratios (AOPC over 10..90 %).
PAPER_RATIOS: Tuple[float, ...] = tuple(k / 10 for k in range(11))
#: ERASER's five bins.
ERASER_RATIOS: Tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.5)


@dataclass(frozen=True)
class Perturbation:
    r"""How the metrics remove tokens.

    Attributes:
        removal (int or str): Replacement id for removed tokens
            (``tokenizer.mask_token_id``, as the paper) or ``"delete"``.
        special_token_ids (sequence of int): Ids never ranked nor removed,
            e.g. ``(tokenizer.cls_token_id,)`` as the paper; ``()`` lets every token go.
        length (str, optional): What ``len`` in ``int(len * K)`` counts:
            ``"all"`` real tokens (the paper) or the ``"removable"`` ones. Default: ``"all"``
        pad_token_id (int, optional): Pads the rows that ``removal="delete"``
            shortens (and LayerIntegratedGradients' baseline in ``compare``). Default: None
    """

    removal: Removal
    special_token_ids: Sequence[int]
    length: str = "all"
    pad_token_id: Optional[int] = None


@dataclass(frozen=True)
class CurveSettings:
    r"""Which removal curves :func:`~captum_normxlogit.metrics.faithfulness_curves` draws, and how it runs the model.

    Attributes:
        ratios (sequence of float, optional): The ``K`` values. Default: :data:`PAPER_RATIOS`
        kinds (sequence of str, optional): ``"comprehensiveness"`` and/or
            ``"sufficiency"``. Default: both
        batch_size (int, optional): Perturbed inputs per forward call. Default: 64
        forward_output (str, optional): What ``forward_func`` returns:
            ``"logits"`` (softmax applied here) or ``"probabilities"`` (used as
            they are). Default: ``"logits"``
    """

    ratios: Sequence[float] = PAPER_RATIOS
    kinds: Sequence[str] = KINDS
    batch_size: int = 64
    forward_output: str = "logits"
