r"""Find the :class:`ModelAdapter` for a model by ``config.model_type``."""
from __future__ import annotations

from typing import Dict, List

from torch import nn

from captum_normxlogit._models.adapter import ModelAdapter
from captum_normxlogit._models.families import FAMILIES, Family

__all__ = ["UnsupportedModelError", "adapter_for", "register_family", "supported_models"]

_BY_MODEL_TYPE: Dict[str, Family] = {}

_CUSTOM_ADAPTER_HINT = """\
To explain it anyway, describe its parts with a ModelAdapter:

    from captum_normxlogit import Head, ModelAdapter, NormXLogit
    adapter = ModelAdapter(
        model,
        head=Head("causal_lm", transform=("model.norm",), output="lm_head"),  # or "sequence_classification" / "masked_lm"
        blocks="layers",            # the block list, relative to backbone
        backbone="model",           # the base model run for LM heads
        position_ids_from_mask=True, use_cache=False,   # for decoders
    )
    nx = NormXLogit(model, adapter=adapter)

or register the whole family once with captum_normxlogit.register_family(Family(...))."""


class UnsupportedModelError(TypeError):
    r"""Raised when no registered family describes a model."""


def register_family(family: Family, overwrite: bool = False) -> None:
    r"""Make a model family known to :func:`adapter_for`.

    Args:
        family (Family): The declarative entry.
        overwrite (bool, optional): Replace an existing entry for the same
            ``model_type`` instead of raising. Default: False
    """
    for model_type in family.model_types:
        if model_type in _BY_MODEL_TYPE and not overwrite:
            raise ValueError(f"model_type {model_type!r} is already registered; pass overwrite=True.")
    for model_type in family.model_types:
        _BY_MODEL_TYPE[model_type] = family


for _family in FAMILIES:
    register_family(_family)


def supported_models() -> Dict[str, List[str]]:
    r"""Registered ``model_type`` values and the task classes each supports."""
    return {mt: sorted(f.heads) for mt, f in sorted(_BY_MODEL_TYPE.items())}


def adapter_for(model: nn.Module) -> ModelAdapter:
    r"""Build the :class:`ModelAdapter` of a registered Hugging Face model.

    Args:
        model (nn.Module): A Hugging Face task model, e.g.
            ``BertForSequenceClassification`` or ``LlamaForCausalLM``.

    Returns:
        ModelAdapter: Its blocks, head and forward conventions.

    Raises:
        UnsupportedModelError: When the model's class is not registered; the
            message shows how to pass a custom adapter.
    """
    cls_name = type(model).__name__
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    family = _BY_MODEL_TYPE.get(model_type) if model_type else None
    if family is None or cls_name not in family.heads:
        if family is None:
            known = ", ".join(sorted(_BY_MODEL_TYPE))
            why = f"model_type {model_type!r} is not registered (registered: {known})."
        else:
            why = (
                f"model_type {model_type!r} is registered for {', '.join(sorted(family.heads))}, "
                f"not {cls_name}."
            )
        raise UnsupportedModelError(f"NormXLogit does not know {cls_name}: {why}\n{_CUSTOM_ADAPTER_HINT}")
    if family.check is not None:
        family.check(model)
    return ModelAdapter(
        model,
        head=family.heads[cls_name],
        blocks=family.blocks,
        backbone=family.backbone,
        position_ids_from_mask=family.position_ids_from_mask,
        use_cache=False if family.decoder else None,
        requires_right_padding=not family.decoder,
        prediction_at="last_token" if family.decoder else None,
    )
