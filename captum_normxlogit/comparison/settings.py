r"""The settings of :func:`~captum_normxlogit.compare`, grouped into small frozen objects.

``compare`` takes each group as one object or its settings as keywords (not
both for one setting); each default is written once: here, in the method table
(:data:`captum_normxlogit.methods.METHODS`) or in
:mod:`captum_normxlogit.metrics.settings`.

* :class:`~captum_normxlogit.metrics.settings.Perturbation` (``perturbation=``):
  how the metrics remove tokens (``removal``, ``special_token_ids``, ``length``, ``pad_token_id``);
* :class:`MethodSettings` (``method_settings=``): how the methods named by key are built;
* :class:`MetricSettings` (``metrics=``): which curves are measured and how the model is run for them;
* :class:`RunSettings` (``run=``): batching of the attributions and progress bars.

Example::

    >>> result = compare(nx, ids, mask, labels=labels,
    ...                  perturbation=Perturbation(tokenizer.mask_token_id, (tokenizer.cls_token_id,)),
    ...                  method_settings=MethodSettings(ig_steps=20), run=RunSettings(progress=False))
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, Optional, Sequence, Tuple, Type, TypeVar

from captum_normxlogit._utils.settings import resolve_group
from captum_normxlogit.methods import IG, RANDOM
from captum_normxlogit.metrics.faithfulness import ERASER_RATIOS, PAPER_RATIOS
from captum_normxlogit.metrics.settings import CurveSettings, Perturbation

__all__ = ["MethodSettings", "MetricSettings", "Perturbation", "RunSettings"]

G = TypeVar("G")


@dataclass(frozen=True)
class MethodSettings:
    r"""How :func:`~captum_normxlogit.compare` builds the methods it is given by key.

    Attributes:
        ig_steps (int, optional): Integrated Gradients steps. Default: 50 (the method table's)
        internal_batch_size (int, optional): Integrated Gradients' internal batch.
            Default: None (all steps at once)
        reduction (str, optional): ``(B, T, H)`` → ``(B, T)`` for gradient
            methods. Default: ``"l1"`` (the method table's, the paper's)
        seed (int, optional): Of the random baseline. Default: 12 (the method table's)
        baseline_keep_ids (sequence of int, optional): Token ids kept in
            LayerIntegratedGradients' baseline. Default: None (the ``special_token_ids``)
    """

    ig_steps: int = IG.defaults["ig_steps"]
    internal_batch_size: Optional[int] = None
    reduction: str = IG.defaults["reduction"]
    seed: int = RANDOM.defaults["seed"]
    baseline_keep_ids: Optional[Sequence[int]] = None


@dataclass(frozen=True)
class MetricSettings:
    r"""Which faithfulness curves :func:`~captum_normxlogit.compare` measures, and how.

    Attributes:
        ratios (sequence of float, optional): The paper's curve. Default: ``PAPER_RATIOS``
        eraser_ratios (sequence of float, optional): ERASER's bins. Default: ``ERASER_RATIOS``
        forward_batch_size (int, optional): Perturbed inputs per forward call.
            Default: 64 (:class:`~captum_normxlogit.metrics.settings.CurveSettings`' ``batch_size``)
        forward_output (str, optional): ``"logits"`` or ``"probabilities"``:
            what ``forward_func`` returns. Default: ``"logits"``
    """

    ratios: Sequence[float] = PAPER_RATIOS
    eraser_ratios: Sequence[float] = ERASER_RATIOS
    forward_batch_size: int = CurveSettings.batch_size
    forward_output: str = CurveSettings.forward_output


@dataclass(frozen=True)
class RunSettings:
    r"""How :func:`~captum_normxlogit.compare` runs the attributions.

    Attributes:
        batch_size (int, optional): Examples per attribution call. Default: 16
        progress (bool, optional): Show tqdm progress bars (one per method). Default: True
    """

    batch_size: int = 16
    progress: bool = True


def resolve_compare_settings(
    arguments: Mapping[str, Any],
) -> Tuple[Perturbation, MethodSettings, MetricSettings, RunSettings]:
    r"""``compare``'s four groups from its arguments (the groups and their loose keywords).

    Args:
        arguments (mapping): ``compare``'s arguments by name.

    Returns:
        *(Perturbation, MethodSettings, MetricSettings, RunSettings)*
    """

    def group(cls: Type[G], name: str) -> G:
        keywords = {f.name: arguments[f.name] for f in fields(cls)}  # type: ignore[arg-type]
        return resolve_group(cls, arguments[name], name, "compare", **keywords)

    return (
        group(Perturbation, "perturbation"),
        group(MethodSettings, "method_settings"),
        group(MetricSettings, "metrics"),
        group(RunSettings, "run"),
    )
