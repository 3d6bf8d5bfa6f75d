r"""The one object that knows where a model keeps its parts.

NormXLogit needs four things from a model: the sequence of transformer blocks
(whose inputs and outputs are the hidden states), the module to run for one
forward pass, the model's own prediction head split into a *transform* and a
final linear *output* layer, and a few conventions (task, positions, caching).
:class:`ModelAdapter` holds exactly those, already resolved to modules, and is
the public way to explain a model that the registry does not know.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from captum_normxlogit._models.tasks import CAUSAL_LM, MASKED_LM, MODEL_TASKS, SEQUENCE_CLASSIFICATION

__all__ = ["ConfigActivation", "Head", "ModelAdapter", "PREDICTION_SITES"]

#: Where the model's own prediction is read: the full model's ``logits`` output,
#: the head at the last non-pad token, or the head at the ``[MASK]`` token.
PREDICTION_SITES = ("model_output", "last_token", "mask_token")
_DEFAULT_SITE = {SEQUENCE_CLASSIFICATION: "model_output", CAUSAL_LM: "last_token", MASKED_LM: "mask_token"}


@dataclass(frozen=True)
class ConfigActivation:
    r"""An activation named by a config attribute, e.g. DeBERTa's ``pooler_hidden_act``.

    Args:
        attribute (str): Name of the ``model.config`` attribute whose value is a
            key of ``transformers.activations.ACT2FN``.
    """

    attribute: str


#: One step of a head's transform: a module path relative to the model (a
#: trailing ``?`` marks a part the architecture may leave as ``None``), a module,
#: a :class:`ConfigActivation`, or any tensor-to-tensor callable.
Step = Union[str, nn.Module, ConfigActivation, Callable[[Tensor], Tensor]]


@dataclass(frozen=True)
class Head:
    r"""The model's own prediction head, as applied to one token's vector.

    The head computes ``logits = output(transform(h))`` where ``transform`` is
    everything up to the last linear layer (final norm, pooler dense + tanh, MLM
    transform, ...) and ``output`` is that linear layer. Splitting it this way
    lets NormXLogit read only the target rows of a vocabulary-sized output.

    Args:
        task (str): One of ``"sequence_classification"`` (one label means
            regression), ``"causal_lm"`` or ``"masked_lm"``.
        transform (sequence of Step): Steps applied in order to a ``(..., H)``
            tensor. Strings are module paths relative to the model; a trailing
            ``?`` allows that module to be ``None`` (then it is skipped).
            Default: ``()``
        output (str or nn.Linear): The final linear layer, or its path.
        softcap (str, float or None, optional): Logit soft-capping
            ``cap * tanh(logit / cap)`` after ``output`` (and after any
            scaling); a string names the config attribute that holds ``cap``
            (a ``None`` value disables it). Default: None
        logit_multiplier (str, float or None, optional): Multiply the logits
            by this factor after ``output`` (Cohere's ``logit_scale``); a
            string names the config attribute. Default: None
        logit_divisor (str, float or None, optional): Divide the logits by
            this factor after ``output`` (Granite's ``logits_scaling``); a
            string names the config attribute. Default: None
    """

    task: str
    transform: Tuple[Step, ...] = ()
    output: Union[str, nn.Module] = ""
    softcap: Union[str, float, None] = None
    logit_multiplier: Union[str, float, None] = None
    logit_divisor: Union[str, float, None] = None

    def __post_init__(self) -> None:
        if self.task not in MODEL_TASKS:
            raise ValueError(f"Head.task must be one of {MODEL_TASKS}, got {self.task!r}.")
        if not self.output:
            raise ValueError("Head.output must name the head's final linear layer.")
        object.__setattr__(self, "transform", tuple(self.transform))


def _resolve_module(model: nn.Module, path: str) -> Optional[nn.Module]:
    optional = path.endswith("?")
    path = path.rstrip("?")
    obj: Any = model
    for part in path.split("."):
        if not hasattr(obj, part):
            raise AttributeError(
                f"{type(model).__name__} has no attribute path {path!r} "
                f"(missing {part!r}); its layout differs from the registered family."
            )
        obj = getattr(obj, part)
    if obj is None and optional:
        return None
    if not isinstance(obj, nn.Module):
        raise TypeError(f"{type(model).__name__}.{path} is {type(obj).__name__}, expected a torch module.")
    return obj


def _resolve_step(model: nn.Module, step: Step) -> Optional[Callable[[Tensor], Tensor]]:
    if isinstance(step, str):
        return _resolve_module(model, step)
    if isinstance(step, ConfigActivation):
        from transformers.activations import ACT2FN

        config = getattr(model, "config", None)
        name = getattr(config, step.attribute, None)
        if name is None:
            raise AttributeError(f"model.config has no activation attribute {step.attribute!r}.")
        return ACT2FN[name]
    if callable(step):
        return step
    raise TypeError(f"Unsupported head step {step!r}: use a module path, a module or a callable.")


@contextmanager
def _loaded(module: nn.Module) -> Iterator[None]:
    r"""Make an ``accelerate``-offloaded module's weights real for a direct read.

    With a ``device_map`` that offloads a module, its parameters sit on the
    ``meta`` device between calls and its ``_hf_hook`` loads them around each
    forward; reading ``weight`` directly needs the same load and unload.
    """
    hook = getattr(module, "_hf_hook", None)
    if hook is None or not any(p.device.type == "meta" for p in module.parameters(recurse=False)):
        yield
        return
    hook.pre_forward(module)
    try:
        yield
    finally:
        hook.post_forward(module, None)


def _execution_device(module: nn.Module) -> torch.device:
    r"""Where ``module`` computes: its accelerate execution device, else its weights' device."""
    hook = getattr(module, "_hf_hook", None)
    device = getattr(hook, "execution_device", None)
    if device is not None:
        return torch.device(device) if not isinstance(device, int) else torch.device("cuda", device)
    return next(module.parameters()).device


def _resolve_blocks(model: nn.Module, backbone: nn.Module, blocks: Any) -> List[nn.Module]:
    if isinstance(blocks, str):
        container = _resolve_module(backbone, blocks)
        blocks = list(container)  # type: ignore[call-overload]  # a ModuleList/Sequential; a bad path raises here
    elif callable(blocks) and not isinstance(blocks, nn.Module):
        blocks = list(blocks(model))
    else:
        blocks = list(blocks)
    if not blocks or not all(isinstance(b, nn.Module) for b in blocks):
        raise TypeError("ModelAdapter.blocks must be a non-empty sequence of modules.")
    return blocks


def _check_every_block(model: nn.Module, blocks: List[nn.Module]) -> None:
    r"""Refuse a block list that leaves blocks out: "final" scores would read an inner block.

    Checked against the list's own container (a ``ModuleList``/``Sequential`` holding the blocks)
    when they share one: no module of the blocks' type may be left out, and the order must be the
    container's. Else against ``config.num_hidden_layers``.
    """
    parents: Dict[int, nn.Module] = {}
    for module in model.modules():
        for child in module.children():
            parents.setdefault(id(child), module)
    containers = {id(parents.get(id(b))) for b in blocks}
    container = parents.get(id(blocks[0]))
    if len(containers) == 1 and isinstance(container, (nn.ModuleList, nn.Sequential)):
        where = [next(i for i, c in enumerate(container) if c is b) for b in blocks]
        kinds = {type(b) for b in blocks}  # a container may also hold other parts (a Sequential's embedding)
        missing = [i for i, c in enumerate(container) if i not in where and type(c) in kinds]
        if missing or where != sorted(where):
            raise ValueError(
                f"ModelAdapter.blocks must list every transformer block of {type(model).__name__}, in execution "
                f"order: their container holds {len(container)} blocks, the list has container indices {where}"
                f"{f' (missing {missing})' if missing else ''}. NormXLogit's final scores read the last listed "
                'block\'s output and layer l reads block l, so pass the whole container, e.g. blocks="layers".'
            )
        return
    expected = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if isinstance(expected, int) and not isinstance(expected, bool) and expected != len(blocks):
        raise ValueError(
            f"ModelAdapter.blocks lists {len(blocks)} blocks but {type(model).__name__}.config.num_hidden_layers "
            f"is {expected}: list every block in execution order (a shared block once per call), since the final "
            "scores read the last listed block's output."
        )


def _is_quantized_linear(module: Any) -> bool:
    r"""A dynamically quantised linear layer (``torch.ao.quantization.quantize_dynamic``)."""
    try:
        from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear
    except ImportError:  # pragma: no cover - a torch without eager-mode quantisation
        return False
    return isinstance(module, DynamicQuantizedLinear)


class ModelAdapter:
    r"""Everything NormXLogit needs to know about one model.

    The registry builds one for every supported Hugging Face family; build one
    yourself to explain any other model whose blocks run one after another and
    whose head reads a single token vector.

    Args:
        model (nn.Module): The model whose predictions are explained.
        head (Head): The model's head (see :class:`Head`). Module paths in it are
            resolved against ``model``.
        blocks (sequence of nn.Module, str or callable): The ``L`` transformer
            blocks in execution order (hidden state ``l`` is the output of block
            ``l``; hidden state 0 is the input of block 0). A string is a path
            relative to ``backbone``; a callable gets ``model`` and returns the
            list. One module may appear several times when it is called several
            times (ALBERT shares layers).
        backbone (nn.Module or str, optional): The module run for language-model
            heads instead of the full model, so that no ``(B, T, vocab)`` logits
            are computed. Classification heads always run the full model so the
            prediction is the model's own. Default: None (the full model)
        position_ids_from_mask (bool, optional): Pass
            ``position_ids = cumsum(attention_mask) - 1`` so a left-padded
            sequence sees the same positions as when alone (decoders with
            rotary or learned absolute positions). Default: False
        use_cache (bool or None, optional): Value passed as ``use_cache`` (decoders:
            ``False`` avoids building a KV cache); None passes nothing.
            Default: None
        requires_right_padding (bool, optional): Reject left-padded batches.
            Encoders need this: their classifiers read position 0 and most of
            them count absolute positions from the first slot, so left padding
            changes the model's own output. Default: False
        prediction_at (str, optional): Where the model's own prediction is read
            (one of :data:`PREDICTION_SITES`): ``"model_output"`` runs the full
            model and takes its ``logits`` (encoder classifiers, which pool
            position 0 themselves); ``"last_token"`` applies the head at the
            last non-pad position found from the attention mask (causal LMs and
            decoder classifiers, so ``inputs_embeds`` with right padding work
            too); ``"mask_token"`` at the ``[MASK]`` position (masked LMs). The
            last two run only ``backbone``. Default: None (by task)

    Example::

        >>> from captum_normxlogit import Head, ModelAdapter, NormXLogit
        >>> adapter = ModelAdapter(
        ...     model,
        ...     head=Head("causal_lm", transform=("model.norm",), output="lm_head"),
        ...     blocks="layers",
        ...     backbone="model",
        ...     position_ids_from_mask=True,
        ...     use_cache=False,
        ... )
        >>> nx = NormXLogit(model, adapter=adapter)
    """

    def __init__(
        self,
        model: nn.Module,
        head: Head,
        blocks: Union[Sequence[nn.Module], str, Callable[[nn.Module], Sequence[nn.Module]]],
        backbone: Union[nn.Module, str, None] = None,
        position_ids_from_mask: bool = False,
        use_cache: Optional[bool] = None,
        requires_right_padding: bool = False,
        prediction_at: Optional[str] = None,
    ) -> None:
        if not isinstance(head, Head):
            raise TypeError(f"head must be a captum_normxlogit.Head, got {type(head).__name__}.")
        self.model = model
        self.head = head
        self.task = head.task
        if isinstance(backbone, str):
            backbone = _resolve_module(model, backbone)
        self.backbone: nn.Module = model if backbone is None else backbone
        self.blocks: List[nn.Module] = _resolve_blocks(model, self.backbone, blocks)
        _check_every_block(model, self.blocks)
        steps = (_resolve_step(model, s) for s in head.transform)
        self.transform_steps: List[Callable[[Tensor], Tensor]] = [s for s in steps if s is not None]
        output = head.output if isinstance(head.output, nn.Module) else _resolve_module(model, head.output)
        #: A dynamically quantised head is run as a module, token by token (its own int8 arithmetic).
        self.quantized_output = _is_quantized_linear(output)
        if not isinstance(output, nn.Linear) and not self.quantized_output:
            kind = f"{type(output).__module__}.{type(output).__qualname__}"
            raise TypeError(
                f"Head.output must be a torch.nn.Linear (or a dynamically quantised "
                f"torch.ao.nn.quantized.dynamic.Linear), got {kind}; NormXLogit reads target rows of its weight."
            )
        self.output: nn.Linear = output  # type: ignore[assignment]
        self.softcap: Optional[float] = self._config_number(head.softcap, "soft-capping")
        multiplier = self._config_number(head.logit_multiplier, "logit multiplier")
        divisor = self._config_number(head.logit_divisor, "logit divisor")
        if divisor == 0:
            raise ValueError("Head.logit_divisor resolves to 0; the logits cannot be divided by it.")
        #: One factor applied to the output layer's logits (1.0: none), before soft-capping.
        self.logit_scale: float = (1.0 if multiplier is None else multiplier) / (1.0 if divisor is None else divisor)
        self.position_ids_from_mask = position_ids_from_mask
        self.use_cache = use_cache
        self.requires_right_padding = requires_right_padding
        self.prediction_at = prediction_at or _DEFAULT_SITE[self.task]
        if self.prediction_at not in PREDICTION_SITES:
            raise ValueError(f"prediction_at must be one of {PREDICTION_SITES}, got {prediction_at!r}.")
        if self.prediction_at == "model_output" and self.task != SEQUENCE_CLASSIFICATION:
            raise ValueError(
                "prediction_at='model_output' reads class logits; use it for sequence classification only."
            )

    # -- facts -----------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        r"""Number of transformer blocks ``L`` (hidden states are ``0..L``)."""
        return len(self.blocks)

    @property
    def num_outputs(self) -> int:
        r"""Number of classes or vocabulary size of the head."""
        return self.output.out_features

    @property
    def is_regression(self) -> bool:
        r"""True for a one-label sequence classification (regression) head."""
        return self.task == SEQUENCE_CLASSIFICATION and self.num_outputs == 1

    def _config_number(self, value: Union[str, float, None], what: str) -> Optional[float]:
        if isinstance(value, str):
            config = getattr(self.model, "config", None)
            if config is None or not hasattr(config, value):
                raise AttributeError(f"model.config has no {what} attribute {value!r}.")
            value = getattr(config, value)
        return None if value is None else float(value)

    # -- the head ----------------------------------------------------------------
    def transform(self, hidden: Tensor) -> Tensor:
        r"""Apply the head up to its last linear layer: ``(..., H) -> (..., H')``."""
        for step in self.transform_steps:
            hidden = step(hidden)
        return hidden

    def _cap(self, logits: Tensor) -> Tensor:
        r"""Everything the head does after its output layer: scaling, then soft-capping."""
        if self.logit_scale != 1.0:
            logits = logits * self.logit_scale
        if self.softcap is None:
            return logits
        return torch.tanh(logits / self.softcap) * self.softcap

    def logits(self, hidden: Tensor) -> Tensor:
        r"""Full head logits ``(..., H) -> (..., C)``; use only on a few vectors for LMs."""
        if self.quantized_output:
            return self._per_token(hidden)
        x = self.transform(hidden)
        with _loaded(self.output):
            weight = self.output.weight
            return self._cap(nn.functional.linear(x.to(weight.device), weight, self.output.bias))

    def target_logits(self, hidden: Tensor, target: Tensor) -> Tensor:
        r"""Logit of ``target[b]`` for every token: ``(B, T, H), (B,) -> (B, T)``.

        Only the ``B`` target rows of the output layer are read, so nothing of
        size ``(B, T, C)`` is materialised. Computed in float32.
        """
        return self.token_logits(hidden, target.unsqueeze(-1))[..., 0]

    def token_logits(self, hidden: Tensor, targets: Tensor) -> Tensor:
        r"""Logits of several ids at every token: ``(B, T, H), (B, K) -> (B, T, K)``.

        ``out[b, t, k]`` is the head's logit for ``targets[b, k]`` read at token
        ``t`` (scaled and soft-capped where the family does). One matmul against the
        ``B * K`` gathered rows of the output layer; nothing of size
        ``(B, T, C)`` is built. Computed in float32. Used for many targets
        (every generated token of an LLM) and for target-minus-foil contrasts.
        """
        if self.quantized_output:  # every logit, then the wanted ones: (B, T, C) for a quantised head
            every = self._per_token(hidden).float()
            return every.gather(-1, targets.to(every.device).unsqueeze(1).expand(-1, every.shape[1], -1))
        x = self.transform(hidden)
        with _loaded(self.output):
            weight, bias = self.output.weight, self.output.bias
            targets = targets.to(weight.device)
            rows = weight[targets].float()  # (B, K, H')
            out = torch.einsum("bth,bkh->btk", x.to(weight.device).float(), rows)
            if bias is not None:
                out = out + bias[targets].float().unsqueeze(1)
        return self._cap(out)

    def _per_token(self, hidden: Tensor) -> Tensor:
        r"""The whole head on one token vector at a time: ``(..., H) -> (..., C)``.

        Dynamic quantisation scales each call's input by that input's own range, so a batched call
        would make a token's reading depend on the other tokens; one call per vector does not (and
        is what the authors' per-token head call computes). Slower: ``B * T`` small calls.
        """
        flat = hidden.reshape(-1, 1, hidden.shape[-1])
        rows = torch.cat([self._cap(self.output(self.transform(vector))) for vector in flat])
        return rows.reshape(*hidden.shape[:-1], rows.shape[-1])

    # -- running the model -------------------------------------------------------------
    def input_device(self) -> torch.device:
        r"""Device of the input embedding table (where inputs must go)."""
        embeddings = getattr(self.model, "get_input_embeddings", lambda: None)()
        return _execution_device(embeddings if isinstance(embeddings, nn.Module) else self.model)

    def forward_kwargs(
        self,
        inputs: Tensor,
        attention_mask: Optional[Tensor],
        token_type_ids: Optional[Tensor],
    ) -> Dict[str, Any]:
        r"""Keyword arguments for one forward pass of :attr:`runner`."""
        device = self.input_device()
        key = "input_ids" if not inputs.is_floating_point() else "inputs_embeds"
        kwargs: Dict[str, Any] = {key: inputs.to(device)}
        if attention_mask is not None:
            kwargs["attention_mask"] = attention_mask.to(device)
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids.to(device)
        if self.position_ids_from_mask and attention_mask is not None:
            positions = attention_mask.to(device).long().cumsum(-1) - 1
            kwargs["position_ids"] = positions.clamp(min=0)
        if self.use_cache is not None:
            kwargs["use_cache"] = self.use_cache
        return kwargs

    @property
    def runner(self) -> nn.Module:
        r"""The module called for the forward pass: the full model when its
        ``logits`` are the prediction (``prediction_at="model_output"``), else
        the backbone, so no vocabulary-sized logits are computed."""
        return self.model if self.prediction_at == "model_output" else self.backbone

    def __repr__(self) -> str:
        return (
            f"ModelAdapter(model={type(self.model).__name__}, task={self.task!r}, "
            f"n_layers={self.n_layers}, output={self.output})"
        )
