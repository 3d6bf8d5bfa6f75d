r"""Find the :class:`ModelAdapter` for a model by ``config.model_type``."""

from __future__ import annotations

from typing import Dict, List, Optional

from torch import nn

from captum_normxlogit._models.adapter import ModelAdapter
from captum_normxlogit._models.errors import CUSTOM_ADAPTER_HINT as _CUSTOM_ADAPTER_HINT
from captum_normxlogit._models.errors import UnsupportedModelError
from captum_normxlogit._models.families import FAMILIES, Family

__all__ = ["UnsupportedModelError", "adapter_for", "register_family", "supported_models"]

_BY_MODEL_TYPE: Dict[str, Family] = {}


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
    r"""Registered ``model_type`` values and the task classes each supports.

    These are the families described by hand in ``families.py``. Any other
    Hugging Face task model (``*ForSequenceClassification``, ``*ForMaskedLM``,
    ``*ForCausalLM``) is tried through the verified automatic adapter: used when
    its hidden states and head logits match the model's own on a probe, refused
    with :class:`UnsupportedModelError` naming the failed check otherwise
    (``captum_normxlogit.check_model(model)`` reports which applies).

    Returns:
        dict: ``model_type`` -> sorted task class names.
    """
    return {mt: sorted(f.heads) for mt, f in sorted(_BY_MODEL_TYPE.items())}


def adapter_for(model: nn.Module) -> ModelAdapter:
    r"""Build the :class:`ModelAdapter` of a Hugging Face model.

    A registered family comes first. Any other Hugging Face task model is tried
    through the verified automatic adapter
    (:func:`captum_normxlogit._models.auto.auto_adapter`): a candidate built from
    Hugging Face's conventions, used only when its hidden states and head logits
    match the model's own on a probe (a warning says so once).

    Args:
        model (nn.Module): A Hugging Face task model, e.g.
            ``BertForSequenceClassification`` or ``LlamaForCausalLM``.

    Returns:
        ModelAdapter: Its blocks, head and forward conventions.

    Raises:
        UnsupportedModelError: When the model is not registered and the automatic
            adapter cannot be built or fails a check; the first line says why, the
            rest shows how to pass a custom adapter.
    """
    family = registered_family(model)
    if family is None:
        config = getattr(model, "config", None)
        if getattr(config, "model_type", None) is None:  # not a Hugging Face model: nothing to go on
            raise UnsupportedModelError(
                f"NormXLogit does not know {type(model).__name__}: it has no config.model_type, so neither the "
                f"registry nor the verified automatic adapter applies.\n{_CUSTOM_ADAPTER_HINT}"
            )
        from captum_normxlogit._models.auto import auto_adapter

        return auto_adapter(model)
    return registered_adapter(model, family)


def registered_family(model: nn.Module) -> Optional[Family]:
    r"""The registered :class:`Family` that lists ``type(model)``, or None."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    family = _BY_MODEL_TYPE.get(model_type) if model_type else None
    return family if family is not None and type(model).__name__ in family.heads else None


def registered_adapter(model: nn.Module, family: Family) -> ModelAdapter:
    r"""The adapter a registered family describes (its ``check`` runs first)."""
    cls_name = type(model).__name__
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
