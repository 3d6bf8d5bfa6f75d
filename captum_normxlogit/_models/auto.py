r"""The verified automatic adapter for Hugging Face models the registry does not list.

A candidate is built from Hugging Face's own conventions only:

* the backbone is ``getattr(model, model.base_model_prefix)``;
* the blocks are the one ``nn.ModuleList`` of length ``config.num_hidden_layers``
  inside the backbone (the shallowest, so a list of experts inside a block is
  never taken for it);
* the final norm is a norm module among the backbone's direct children,
  registered after the block list;
* the head is the task model's own children, in registration order, from the
  first after the backbone up to the output layer (``get_output_embeddings()``
  for language models; for a classifier the last ``nn.Linear`` with
  ``num_labels`` outputs, i.e. ``classifier``, ``score`` or
  ``classifier.out_proj``); a classifier may also use the backbone's
  ``pooler``. Each part runs on one token at a time, as a length-1 sequence, and
  the part holding the output layer stops at that layer's input.

The candidate is then verified once on a probe (:mod:`._models.verify`): it is
used only when the captured hidden states equal the model's
``output_hidden_states`` and its head reproduces the model's logits; otherwise
:class:`UnsupportedModelError` names the failed check. The decision is kept per
model object (weakly), so the probe runs once per model.
"""

from __future__ import annotations

import inspect
import time
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, cast

from torch import Tensor, nn

from captum_normxlogit._models.adapter import Head, ModelAdapter
from captum_normxlogit._models.errors import CUSTOM_ADAPTER_HINT, UnsupportedModelError
from captum_normxlogit._models.tasks import CAUSAL_LM, MASKED_LM, SEQUENCE_CLASSIFICATION
from captum_normxlogit._models.verify import (
    CheckResult,
    Verification,
    check_head_logits,
    check_hidden_states,
    make_probe,
    refusal,
    run_probe,
)

__all__ = ["AutoOutcome", "auto_adapter", "try_auto_adapter"]

_TASK_SUFFIXES = (
    ("ForSequenceClassification", SEQUENCE_CLASSIFICATION),
    ("ForMaskedLM", MASKED_LM),
    ("ForCausalLM", CAUSAL_LM),
    ("LMHeadModel", CAUSAL_LM),
)

#: model -> the plan that passed (paths and flags only: no reference back to the model).
_VERIFIED: "weakref.WeakKeyDictionary[nn.Module, _Plan]" = weakref.WeakKeyDictionary()


class _OutputReached(Exception):
    def __init__(self, value: Tensor) -> None:
        super().__init__()
        self.value = value


class TokenwiseHead:
    r"""Run a head's modules on each token as a length-1 sequence, up to the output layer's input.

    ``(..., H)`` in, ``(..., H')`` out (``H'`` = the output layer's ``in_features``). A part that
    holds the output layer is run until that layer is called; a forward pre-hook takes the
    layer's input and stops the part there (the hook is removed on every call).
    """

    def __init__(self, parts: List[nn.Module], names: List[str], output: nn.Linear) -> None:
        self.parts, self.names, self.output = parts, names, output
        self._holds_output = [any(m is output for m in part.modules()) for part in parts]

    def _up_to_output(self, part: nn.Module, x: Tensor) -> Tensor:
        def stop(module: nn.Module, args: Tuple[Any, ...]) -> None:
            raise _OutputReached(args[0])

        handle = self.output.register_forward_pre_hook(stop)
        try:
            part(x)
        except _OutputReached as reached:
            return reached.value
        finally:
            handle.remove()
        raise RuntimeError(f"head part {type(part).__name__} never called the output layer")

    def __call__(self, hidden: Tensor) -> Tensor:
        lead = hidden.shape[:-1]
        x = hidden.reshape(-1, 1, hidden.shape[-1])
        for part, holds in zip(self.parts, self._holds_output):
            x = self._up_to_output(part, x) if holds else part(x)
            if not isinstance(x, Tensor):
                raise TypeError(f"head part {type(part).__name__} returned {type(x).__name__}, not a tensor")
        return x.reshape(*lead, x.shape[-1])

    def __repr__(self) -> str:
        return f"TokenwiseHead({', '.join(self.names)})"


@dataclass
class _Plan:
    r"""One candidate, as paths relative to the task model, plus forward conventions."""

    task: str
    backbone: str
    blocks: str  # relative to the backbone
    final_norm: Optional[str]
    parts: Tuple[str, ...]  # head modules run token-wise before (or around) the output
    output: str
    decoder: bool = False
    accepts_position_ids: bool = False
    accepts_use_cache: bool = False
    classifier_position: str = "first"  # classifiers: "first" (encoders) or "last" token (decoders)

    def build(self, model: nn.Module) -> ModelAdapter:
        output = _get(model, self.output)
        transform: List[Any] = [self.final_norm] if self.final_norm else []
        if self.parts:
            # the planner chose ``output`` as an nn.Linear (_output_layer); the path still leads to it
            head = TokenwiseHead([_get(model, p) for p in self.parts], list(self.parts), cast(nn.Linear, output))
            transform.append(head)
        decoder = self.decoder or (self.task == SEQUENCE_CLASSIFICATION and self.classifier_position == "last")
        return ModelAdapter(
            model,
            head=Head(self.task, tuple(transform), self.output),
            blocks=self.blocks,
            backbone=self.backbone,
            position_ids_from_mask=decoder and self.accepts_position_ids,
            use_cache=False if self.accepts_use_cache else None,
            requires_right_padding=not decoder,
            prediction_at="last_token" if decoder else None,
        )

    def describe(self) -> str:
        steps = [s for s in (self.final_norm, *self.parts) if s]
        return (
            f"backbone {self.backbone!r}, blocks {self.backbone}.{self.blocks}, head "
            f"{' -> '.join(steps + [self.output])}" + (" (decoder conventions)" if self.decoder else "")
        )


@dataclass
class AutoOutcome:
    r"""What the automatic adapter found for one model.

    ``adapter`` is set when a candidate passed both checks; otherwise ``reason``
    is the one-line refusal and ``error`` the full :class:`UnsupportedModelError`.
    """

    adapter: Optional[ModelAdapter]
    verification: Optional[Verification]
    reason: str = ""
    error: Optional[UnsupportedModelError] = None
    plan: Optional[_Plan] = field(default=None, repr=False)


def _get(model: nn.Module, path: str) -> nn.Module:
    obj: Any = model
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _path_of(model: nn.Module, module: nn.Module) -> Optional[str]:
    return next((name for name, m in model.named_modules() if m is module and name), None)


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, (nn.LayerNorm, nn.GroupNorm)) or "norm" in type(module).__name__.lower()


def _parameters(module: nn.Module) -> set:
    try:
        return set(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        return set()


def _skip(module: nn.Module) -> bool:
    # Dropout is the identity in eval mode; loss modules are never part of the prediction.
    return isinstance(module, nn.Dropout) or type(module).__name__.endswith("Loss")


def _refuse(model: nn.Module, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"NormXLogit does not know {type(model).__name__}: the automatic adapter found {why}.\n{CUSTOM_ADAPTER_HINT}"
    )


def _block_list(model: nn.Module, backbone: nn.Module, prefix: str, n_layers: int) -> str:
    r"""Path (relative to the backbone) of the one block list: the shallowest ModuleList of ``n_layers``."""
    # A list of lists is a container of stages (Funnel), not blocks that are called.
    lists = [
        path
        for path, m in backbone.named_modules()
        if isinstance(m, nn.ModuleList)
        and len(m) == n_layers
        and not any(isinstance(b, (nn.ModuleList, nn.ModuleDict)) for b in m)
    ]
    if not lists:
        raise _refuse(
            model,
            f"no nn.ModuleList of length config.num_hidden_layers={n_layers} in {prefix!r} (shared or nested blocks)",
        )
    depth = min(path.count(".") for path in lists)
    lists = [path for path in lists if path.count(".") == depth]
    if len(lists) > 1:
        raise _refuse(model, f"several block lists of length {n_layers}: {', '.join(lists)}")
    return lists[0]


def _final_norm(model: nn.Module, backbone: nn.Module, prefix: str, blocks: str) -> Optional[str]:
    r"""The norm among the backbone's direct children registered after the block list, if any."""
    names = [n for n, _ in backbone.named_children()]
    after = names[names.index(blocks.split(".")[0]) + 1 :]
    norms = [n for n in after if getattr(backbone, n) is not None and _is_norm(getattr(backbone, n))]
    if len(norms) > 1:
        raise _refuse(
            model, f"several norms after the blocks in {prefix!r} ({', '.join(norms)}), so no single final norm"
        )
    return f"{prefix}.{norms[0]}" if norms else None


def _output_layer(model: nn.Module, backbone: nn.Module, task: str) -> nn.Linear:
    if task == SEQUENCE_CLASSIFICATION:
        labels = int(getattr(model.config, "num_labels", 0) or 0)
        heads = [m for m in model.children() if m is not backbone and m is not None and not _skip(m)]
        linears = [m for part in heads for m in part.modules() if isinstance(m, nn.Linear) and m.out_features == labels]
        if not linears:
            raise _refuse(model, f"no nn.Linear with num_labels={labels} outputs outside the backbone")
        return linears[-1]  # classifier, score or classifier.out_proj: the last one with num_labels outputs
    get_output = getattr(model, "get_output_embeddings", None)  # a Hugging Face method, not an nn.Module one
    output = get_output() if callable(get_output) else None
    if not isinstance(output, nn.Linear):
        raise _refuse(model, f"get_output_embeddings() is {type(output).__name__}, not an nn.Linear")
    return output


def _head_parts(model: nn.Module, backbone: nn.Module, output: nn.Linear) -> List[str]:
    r"""The task model's children after the backbone, in registration order, up to the one holding ``output``."""
    parts: List[str] = []
    for child_name, child in model.named_children():
        if child is backbone or child is None or _skip(child):
            continue
        if child is output:
            return parts
        parts.append(child_name)
        if any(m is output for m in child.modules()):
            return parts
    raise _refuse(model, "the output layer outside the task model's direct children")


def _plans(model: nn.Module) -> List[_Plan]:
    r"""Candidates from Hugging Face's conventions; raises ``UnsupportedModelError`` with the reason."""
    name = type(model).__name__
    task = next((t for suffix, t in _TASK_SUFFIXES if name.endswith(suffix)), None)
    if task is None:
        raise _refuse(
            model,
            "no task it knows in the class name (it reads *ForSequenceClassification, "
            "*ForMaskedLM, *ForCausalLM and *LMHeadModel)",
        )
    prefix = getattr(model, "base_model_prefix", "") or ""
    backbone = getattr(model, prefix, None) if prefix else None
    if not isinstance(backbone, nn.Module) or backbone is model:
        raise _refuse(model, f"no backbone at base_model_prefix {prefix!r}")
    n_layers = getattr(model.config, "num_hidden_layers", None)
    if not isinstance(n_layers, int) or n_layers < 1:
        raise _refuse(model, "no config.num_hidden_layers")
    blocks = _block_list(model, backbone, prefix, n_layers)
    output = _output_layer(model, backbone, task)
    parts = _head_parts(model, backbone, output)
    params = _parameters(backbone)
    common: Dict[str, Any] = dict(
        task=task,
        backbone=prefix,
        blocks=blocks,
        final_norm=_final_norm(model, backbone, prefix, blocks),
        output=_path_of(model, output),
        decoder=task == CAUSAL_LM,
        accepts_position_ids="position_ids" in params,
        accepts_use_cache="use_cache" in params,
    )
    plans = [_Plan(parts=tuple(parts), **common)]
    if task == SEQUENCE_CLASSIFICATION:
        if isinstance(getattr(backbone, "pooler", None), nn.Module):  # BERT's classifier reads the pooler first
            plans.insert(0, _Plan(parts=(f"{prefix}.pooler", *parts), **common))
        # the token a classifier reads: the first (encoders) or the last (decoders); the probe tells which
        plans = [_Plan(**{**p.__dict__, "classifier_position": where}) for p in plans for where in ("first", "last")]
    return plans


def try_auto_adapter(model: nn.Module) -> AutoOutcome:
    r"""Build, verify and return the automatic adapter of ``model``, or why there is none.

    Never raises for a model it cannot describe: the outcome carries the reason.
    The probe's forward pass runs once; every candidate head is checked on it.
    """
    if model in _VERIFIED:
        return AutoOutcome(_VERIFIED[model].build(model), None, plan=_VERIFIED[model])
    try:
        plans = _plans(model)
        adapters = [plan.build(model) for plan in plans]
    except UnsupportedModelError as error:
        return AutoOutcome(None, None, str(error).split("\n", 1)[0], error)
    except (AttributeError, TypeError, ValueError) as error:
        refused = UnsupportedModelError(
            f"NormXLogit does not know {type(model).__name__}: the automatic adapter could not be built "
            f"({type(error).__name__}: {error}).\n{CUSTOM_ADAPTER_HINT}"
        )
        return AutoOutcome(None, None, refused.reason, refused)
    start = time.perf_counter()
    probe = run_probe(adapters[0], *make_probe(model))
    hidden = check_hidden_states(adapters[0], probe)  # blocks and final norm are shared by every candidate
    best: Optional[Tuple[_Plan, ModelAdapter, CheckResult]] = None
    if hidden.passed:
        for plan, adapter in zip(plans, adapters):
            position = 0 if plan.classifier_position == "first" else probe.ids.shape[1] - 1
            logits = check_head_logits(adapter, probe, position if plan.task == SEQUENCE_CLASSIFICATION else None)
            if (
                best is None
                or (logits.passed and not best[2].passed)
                or (not best[2].passed and logits.max_diff < best[2].max_diff)
            ):
                best = (plan, adapter, logits)
            if logits.passed:
                break
    else:
        best = (plans[0], adapters[0], check_head_logits(adapters[0], probe))
    assert best is not None  # plans is never empty: the loop above ran at least once
    plan, adapter, logits = best
    verification = Verification(hidden, logits, time.perf_counter() - start)
    if not verification.passed:
        refused = refusal(
            model, "the verified automatic adapter", verification, prefix="it is not in the registry, and "
        )
        return AutoOutcome(None, verification, refused.reason, refused, plan)
    _VERIFIED[model] = plan
    warnings.warn(
        f"{type(model).__name__} is not in the registry: using a verified automatic adapter ({plan.describe()}; "
        f"hidden states and head logits match the model's own on a probe).",
        UserWarning,
        stacklevel=3,
    )
    return AutoOutcome(adapter, verification, plan=plan)


def auto_adapter(model: nn.Module) -> ModelAdapter:
    r"""The verified automatic adapter of a Hugging Face model, bypassing the registry.

    Args:
        model (nn.Module): A Hugging Face task model (``*ForSequenceClassification``,
            ``*ForMaskedLM``, ``*ForCausalLM``).

    Returns:
        ModelAdapter: A candidate built from Hugging Face's conventions that passed
        both checks of :mod:`captum_normxlogit._models.verify` on a probe.

    Raises:
        UnsupportedModelError: When no candidate can be built or one fails a check;
            the first line names the failed check and its largest difference.
    """
    outcome = try_auto_adapter(model)
    if outcome.adapter is None:
        assert outcome.error is not None
        raise outcome.error
    return outcome.adapter
