r"""Faithfulness and plausibility metrics for any Captum-shaped token attribution.

Functions in the style of ``captum.metrics``: they take attributions of shape
``(B, T)`` (NormXLogit) or ``(B, T, H)`` (gradient methods, with an explicit
reduction) and never care which method produced them. :func:`token_removal_perturbation` is the
``perturb_func`` that lets ``captum.metrics.infidelity`` score such attributions on token ids.
"""

from captum_normxlogit.metrics import faithfulness, perturbation, plausibility
from captum_normxlogit.metrics.faithfulness import *  # noqa: F401,F403
from captum_normxlogit.metrics.perturbation import *  # noqa: F401,F403
from captum_normxlogit.metrics.plausibility import *  # noqa: F401,F403

__all__ = [*faithfulness.__all__, *perturbation.__all__, *plausibility.__all__]
