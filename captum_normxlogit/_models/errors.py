r"""The error raised for a model NormXLogit cannot describe, and the recipe it shows."""

from __future__ import annotations

__all__ = ["CUSTOM_ADAPTER_HINT", "UnsupportedModelError"]

CUSTOM_ADAPTER_HINT = """\
To explain it anyway, describe its parts with a ModelAdapter:

    from captum_normxlogit import Head, ModelAdapter, NormXLogit
    adapter = ModelAdapter(
        model,
        head=Head("causal_lm", transform=("model.norm",), output="lm_head"),  # or "sequence_classification" / "masked_lm"
        blocks="layers",            # the block list, relative to backbone
        backbone="model",           # the base model run for LM heads
        position_ids_from_mask=True, use_cache=False,   # for decoders
    )
    nx = NormXLogit(model, adapter=adapter, verify=True)   # verify=True checks it against the model's own outputs

or register the whole family once with captum_normxlogit.register_family(Family(...))."""  # noqa: E501 (the recipe's code line)


class UnsupportedModelError(TypeError):
    r"""Raised when neither a registered family nor the verified automatic adapter describes a model.

    The first line of the message is the one-line reason (``normxlogit
    check-model`` and ``normxlogit explain`` print it); the rest shows how to
    describe the model with a custom :class:`ModelAdapter`.
    """

    @property
    def reason(self) -> str:
        r"""The first line of the message: why the model was refused."""
        return str(self).split("\n", 1)[0]
