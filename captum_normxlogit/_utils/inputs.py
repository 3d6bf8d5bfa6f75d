r"""Validation of what users hand to ``attribute``: every check raises before the model runs."""

from __future__ import annotations

from typing import Any, List, NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor

__all__ = [
    "ModelInputs",
    "check_attention_mask",
    "check_token_type_ids",
    "format_inputs",
    "format_output",
    "parse_forward_args",
    "resolve_target",
]

TensorOrTuple = Union[Tensor, Tuple[Tensor, ...]]


class ModelInputs(NamedTuple):
    r"""Validated inputs of one ``attribute`` call."""

    tensor: Tensor  # ids (B, T) long or embeds (B, T, H) float
    attention_mask: Tensor  # (B, T) long, 1 = real token
    token_type_ids: Optional[Tensor]
    is_tuple: bool

    @property
    def is_embeds(self) -> bool:
        return self.tensor.is_floating_point()


def _check_not_meta(name: str, value: Tensor) -> None:
    if value.device.type == "meta":
        raise ValueError(
            f"{name} is on the meta device (a shape without data), so there is nothing to compute on; "
            "create it on the model's device (e.g. torch.tensor(..., device='cpu'))."
        )


def format_inputs(
    inputs: TensorOrTuple,
    embedding_dim: int,
    num_embeddings: Optional[int],
    embedding_dtype: Optional[torch.dtype] = None,
) -> Tuple[Tensor, bool]:
    r"""Unpack a tensor or 1-tuple and check it is ids ``(B, T)`` or embeds ``(B, T, H)``.

    ``embedding_dtype`` is the dtype of the model's input embedding table: embeddings of another
    dtype would meet the model's weights in mixed precision, which torch refuses mid-pass.
    """
    is_tuple = isinstance(inputs, tuple)
    if is_tuple:
        if len(inputs) != 1:
            raise ValueError(
                f"NormXLogit takes one input tensor (input_ids or inputs_embeds), got a tuple of {len(inputs)}; "
                "pass the attention mask and token_type_ids through additional_forward_args."
            )
        inputs = inputs[0]
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a torch.Tensor or a 1-tuple of one, got {type(inputs).__name__}.")
    _check_not_meta("inputs", inputs)
    if inputs.is_floating_point():
        if inputs.dim() != 3 or inputs.shape[-1] != embedding_dim:
            raise ValueError(
                f"Float inputs of shape {tuple(inputs.shape)} are neither input_ids nor inputs_embeds: pass "
                f"input_ids as a torch.long (B, T) tensor, or inputs_embeds as a float (B, T, {embedding_dim}) tensor."
            )
        if embedding_dtype is not None and inputs.dtype != embedding_dtype:
            raise TypeError(
                f"inputs_embeds are {inputs.dtype} but the model's input embeddings are {embedding_dtype}: "
                f"pass inputs_embeds.to({embedding_dtype}) (or convert the model with model.to({inputs.dtype}))."
            )
    elif inputs.dtype in (torch.long, torch.int, torch.int32, torch.int16, torch.uint8):
        if inputs.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, seq_len), got {tuple(inputs.shape)}.")
        inputs = inputs.long()
        if num_embeddings is not None and inputs.numel() and (inputs.min() < 0 or inputs.max() >= num_embeddings):
            raise ValueError(
                f"input_ids must lie in [0, {num_embeddings}) (the model's vocabulary), "
                f"got values in [{int(inputs.min())}, {int(inputs.max())}]."
            )
    else:
        raise TypeError(f"inputs dtype {inputs.dtype} is neither integer ids nor float embeddings.")
    if inputs.shape[0] == 0:
        raise ValueError("inputs hold an empty batch (batch size 0).")
    if inputs.shape[1] == 0:
        raise ValueError("inputs hold an empty sequence (seq_len 0): there is no token to attribute.")
    return inputs, is_tuple


def _check_2d(name: str, value: Any, shape: Tuple[int, int]) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}.")
    _check_not_meta(name, value)
    if tuple(value.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(value.shape)} but the inputs need {shape} (batch, seq_len).")
    return value


def check_attention_mask(mask: Any, shape: Tuple[int, int]) -> Tensor:
    r"""``mask`` as a ``(B, T)`` long tensor of 0/1, refusing anything a cast would silently change.

    Bool, integer and float masks are accepted when every value is exactly 0 or 1 (a float 0.5 is
    refused, not truncated to 0; a decoder mask of 2 would shift the positions built from it).
    """
    mask = _check_2d("attention_mask", mask, shape)
    if mask.is_complex():
        raise TypeError(f"attention_mask must be bool, integer or float 0/1, got dtype {mask.dtype}.")
    if mask.dtype != torch.bool and not bool(((mask == 0) | (mask == 1)).all()):
        seen = [float(v) for v in mask.unique()[:6].tolist()]
        raise ValueError(
            f"attention_mask must hold only 0 (padding) and 1 (token), got values {seen}; "
            "pass the tokenizer's attention_mask unchanged."
        )
    return mask.long()


def check_token_type_ids(token_type_ids: Any, shape: Tuple[int, int], type_vocab_size: Optional[int]) -> Tensor:
    r"""``token_type_ids`` as a ``(B, T)`` long tensor of segment ids in ``[0, type_vocab_size)``."""
    token_type_ids = _check_2d("token_type_ids", token_type_ids, shape)
    if token_type_ids.is_floating_point() or token_type_ids.is_complex() or token_type_ids.dtype == torch.bool:
        raise TypeError(
            f"token_type_ids must hold integer segment ids, got dtype {token_type_ids.dtype}; "
            "pass the tokenizer's token_type_ids (a torch.long tensor)."
        )
    token_type_ids = token_type_ids.long()
    low, high = int(token_type_ids.min()), int(token_type_ids.max())  # shape (B, T) with B, T > 0
    if low < 0 or (type_vocab_size is not None and high >= type_vocab_size):
        allowed = (
            "be 0 or more"
            if type_vocab_size is None
            else (
                f"lie in [0, {type_vocab_size}): the model has config.type_vocab_size = {type_vocab_size} segment types"
            )
        )
        raise ValueError(
            f"token_type_ids must {allowed}, got values in [{low}, {high}]. "
            "Pass the token_type_ids of this model's own tokenizer."
        )
    return token_type_ids


def parse_forward_args(
    additional_forward_args: Any, inputs: Tensor, is_tuple: bool, type_vocab_size: Optional[int] = None
) -> ModelInputs:
    r"""Read ``(attention_mask[, token_type_ids])`` from Captum's positional extras."""
    args: Tuple[Any, ...]
    if additional_forward_args is None:
        args = ()
    elif isinstance(additional_forward_args, tuple):
        args = additional_forward_args
    else:
        args = (additional_forward_args,)
    if len(args) > 2:
        raise ValueError(
            f"additional_forward_args takes (attention_mask,) or (attention_mask, token_type_ids), "
            f"got {len(args)} values."
        )
    shape = (inputs.shape[0], inputs.shape[1])
    mask = args[0] if args else None
    if mask is None:
        mask = torch.ones(shape, dtype=torch.long, device=inputs.device)
    else:
        mask = check_attention_mask(mask, shape)
        empty = (mask.sum(-1) == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"Examples {empty} have an empty sequence (attention_mask all 0): nothing to attribute.")
    token_type_ids = None
    if len(args) == 2 and args[1] is not None:
        token_type_ids = check_token_type_ids(args[1], shape, type_vocab_size)
    return ModelInputs(inputs, mask, token_type_ids, is_tuple)


def resolve_target(target: Any, batch_size: int, num_outputs: int, name: str = "target") -> Tensor:
    r"""Turn a Captum-style target into one class/token id per example, ``(B,)`` long.

    ``target=None`` (the model's own prediction) is resolved by the caller after the pass.
    ``name`` is the argument named in error messages (``"foil"`` for contrasts).
    """
    if isinstance(target, tuple) or (isinstance(target, list) and target and isinstance(target[0], tuple)):
        raise ValueError(
            f"Tuple {name}s index multi-dimensional outputs; NormXLogit scores one class or token per "
            "example: pass an int, a list of ints or a 1-D tensor."
        )
    if isinstance(target, bool):
        raise TypeError(f"{name} must be an int, a list of ints or a 1-D tensor, not a bool.")
    if isinstance(target, int):
        out = torch.full((batch_size,), target, dtype=torch.long)
    elif isinstance(target, (list, Tensor)):
        out = torch.as_tensor(target)
        if out.is_floating_point() or out.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer ids, got dtype {out.dtype}.")
        if out.dim() == 0:
            out = out.expand(batch_size)
        if out.dim() != 1 or out.shape[0] != batch_size:
            raise ValueError(f"{name} must hold one id per example ({batch_size}), got shape {tuple(out.shape)}.")
        out = out.long()
    else:
        raise TypeError(f"{name} must be None, an int, a list of ints or a 1-D tensor, got {type(target).__name__}.")
    bad = ((out < 0) | (out >= num_outputs)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(
            f"{name} {out[bad].tolist()} (examples {bad}) out of range: the head has {num_outputs} outputs, "
            f"so {name}s must lie in [0, {num_outputs})."
        )
    return out


def format_output(scores: Tensor, is_tuple: bool) -> TensorOrTuple:
    r"""Return ``scores`` with the same structure the inputs had."""
    return (scores,) if is_tuple else scores


def flatten_layers(layer: Any) -> Tuple[List[Any], bool]:
    r"""``layer`` as a list, and whether the user passed a list."""
    if isinstance(layer, (list, tuple)):
        if not layer:
            raise ValueError("layer is an empty list: pass a block, an index or None.")
        return list(layer), True
    return [layer], False
