r"""NormXLogit for Captum: forward-only, signed token attribution for any transformer.

Public face only; the code lives in underscore packages, as in ``captum.attr``.
"""

from captum_normxlogit._core.check import ModelCheck, check_model
from captum_normxlogit._core.llm import LLMLayerAttributionResult, LLMNormXLogit
from captum_normxlogit._core.normxlogit import NormXLogit
from captum_normxlogit._models.adapter import ConfigActivation, Head, ModelAdapter
from captum_normxlogit._models.families import Family
from captum_normxlogit._models.registry import (
    UnsupportedModelError,
    adapter_for,
    register_family,
    supported_models,
)
from captum_normxlogit._utils.reduce import reduce_hidden
from captum_normxlogit.comparison import ComparisonResult, compare
from captum_normxlogit.comparison.settings import MethodSettings, MetricSettings, Perturbation, RunSettings
from captum_normxlogit.metrics.settings import CurveSettings

__version__ = "0.1.0"

__all__ = [
    "ComparisonResult",
    "ConfigActivation",
    "CurveSettings",
    "Family",
    "Head",
    "LLMLayerAttributionResult",
    "LLMNormXLogit",
    "MethodSettings",
    "MetricSettings",
    "ModelAdapter",
    "ModelCheck",
    "NormXLogit",
    "Perturbation",
    "RunSettings",
    "UnsupportedModelError",
    "adapter_for",
    "check_model",
    "compare",
    "reduce_hidden",
    "register_family",
    "supported_models",
]
