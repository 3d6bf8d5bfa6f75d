r"""Check an adapter against the model's own outputs on a small probe input.

An adapter is right when two things hold on one forward pass:

1. **hidden states**: the states its hooks capture (the input of block 0, then
   every block's output) equal what the model returns with
   ``output_hidden_states=True``. Hugging Face returns the last entry after the
   final norm in many families, so the last one may instead equal the captured
   state with the first step(s) of the head's transform applied.
2. **head logits**: the adapter's head applied to the last captured state at the
   prediction position equals the model's own ``logits`` (this catches logit
   scaling, soft-capping, extra projections, a missed or doubled final norm).

The same head reads every layer, so passing both makes the layer-wise scores
right too. The probe is a few random token ids (batch 2), run once under
``torch.no_grad()`` in eval mode; hooks are removed and training flags restored
even when the forward pass raises.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from captum_normxlogit._models.adapter import ModelAdapter
from captum_normxlogit._models.errors import CUSTOM_ADAPTER_HINT, UnsupportedModelError
from captum_normxlogit._models.tasks import SEQUENCE_CLASSIFICATION
from captum_normxlogit._utils.capture import HiddenStates, capture_hidden_states, eval_mode

__all__ = ["CheckResult", "Probe", "Verification", "make_probe", "run_probe", "verify_adapter"]

#: Tokens per probe row and rows per probe.
PROBE_LENGTH, PROBE_BATCH = 6, 2

HIDDEN_CHECK, LOGITS_CHECK = "hidden-states", "head-logits"


@dataclass
class CheckResult:
    r"""One check: the largest absolute difference found and the tolerance it had to meet.

    ``max_diff`` is ``inf`` when the two sides could not even be compared (a
    shape differs, a part is missing); ``detail`` then says why.
    """

    name: str
    passed: bool
    max_diff: float
    tolerance: float
    detail: str = ""

    def describe(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        numbers = (
            ""
            if math.isinf(self.max_diff)
            else f"largest difference {self.max_diff:.3g} (tolerance {self.tolerance:.3g})"
        )
        extra = "; ".join(p for p in (numbers, self.detail) if p)
        return f"{self.name} check {verdict}" + (f": {extra}" if extra else "")


@dataclass
class Verification:
    r"""Both checks of one adapter on one probe, and what they cost."""

    hidden: CheckResult
    logits: CheckResult
    seconds: float

    @property
    def passed(self) -> bool:
        return self.hidden.passed and self.logits.passed

    @property
    def failed(self) -> Optional[CheckResult]:
        r"""The first check that failed, or None."""
        return next((c for c in (self.hidden, self.logits) if not c.passed), None)


@dataclass
class Probe:
    r"""A probe batch and the one hooked forward pass of the full model on it."""

    ids: Tensor  # (B, T)
    mask: Tensor  # (B, T), all ones
    states: Optional[HiddenStates]
    output: Any
    error: str = ""  # why the forward pass could not run, if it could not
    seconds: float = 0.0


def tolerance(reference: Tensor) -> float:
    r"""Allowed absolute difference: relative to the largest value, floored by the dtype's precision."""
    precision = max(1e-5, 16 * torch.finfo(reference.dtype).eps) if reference.is_floating_point() else 0.0
    scale = float(reference.detach().abs().max()) if reference.numel() else 0.0
    return precision * max(1.0, scale)


def _special_ids(config: Any) -> set:
    ids: set = set()
    for name in (
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
        "sep_token_id",
        "cls_token_id",
        "mask_token_id",
        "unk_token_id",
        "decoder_start_token_id",
    ):
        value = getattr(config, name, None)
        ids.update(value if isinstance(value, (list, tuple)) else [value])
    return {int(i) for i in ids if isinstance(i, int)}


def make_probe(model: nn.Module, batch: int = PROBE_BATCH, length: int = PROBE_LENGTH) -> Tuple[Tensor, Tensor]:
    r"""Seeded random ids ``(batch, length)`` and an all-ones mask, avoiding the config's special ids.

    A decoder classifier without ``pad_token_id`` accepts only batch 1 (it cannot find the last
    token otherwise), so it gets one row.
    """
    config = getattr(model, "config", None)
    get_table = getattr(model, "get_input_embeddings", None)  # a Hugging Face method, not an nn.Module one
    table = get_table() if callable(get_table) else None
    vocab = getattr(table, "num_embeddings", None) or int(getattr(config, "vocab_size", 0) or 0)
    if vocab < 2:
        raise UnsupportedModelError(f"{type(model).__name__}: cannot build a probe input (no vocabulary size found).")
    if getattr(config, "pad_token_id", None) is None and type(model).__name__.endswith("ForSequenceClassification"):
        batch = 1
    special = _special_ids(config)
    low = min(10, vocab // 2)
    pool = [i for i in range(low, min(vocab, 1000)) if i not in special] or list(range(vocab))
    generator = torch.Generator().manual_seed(0)
    picks = torch.randint(len(pool), (batch, length), generator=generator)
    ids = torch.tensor(pool, dtype=torch.long)[picks]
    return ids, torch.ones_like(ids)


_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks_with_kwargs",
)
_HF_HOOKS_FLAG = "_output_capturing_hooks_installed"


@contextmanager
def _as_found(model: nn.Module) -> Iterator[None]:
    r"""Leave no hook behind, not even transformers' own.

    transformers 5 installs its output-recording hooks on a model the first time
    ``output_hidden_states=True`` is asked for, and keeps them; the probe asks
    for it, so whatever it added is taken off again afterwards.
    """
    modules = list(model.modules())
    before = [{name: set(getattr(m, name, {})) for name in _HOOK_DICTS} for m in modules]
    flagged = [_HF_HOOKS_FLAG in vars(m) for m in modules]
    try:
        yield
    finally:
        for module, known, had_flag in zip(modules, before, flagged):
            for name, ids in known.items():
                hooks = getattr(module, name, None) or {}
                for key in [k for k in hooks if k not in ids]:
                    del hooks[key]
            if not had_flag and _HF_HOOKS_FLAG in vars(module):
                delattr(module, _HF_HOOKS_FLAG)


def run_probe(adapter: ModelAdapter, ids: Tensor, mask: Tensor) -> Probe:
    r"""Run the full model once on the probe with ``output_hidden_states=True`` and every state hooked."""
    kwargs = adapter.forward_kwargs(ids, mask, None)
    kwargs["output_hidden_states"] = True
    start = time.perf_counter()
    try:
        with torch.no_grad(), eval_mode(adapter.model), _as_found(adapter.model):
            with capture_hidden_states(adapter.blocks, range(adapter.n_layers + 1)) as states:
                output = adapter.model(**kwargs)
    except Exception as error:  # any failure of the model itself refuses the adapter, with its reason
        return Probe(ids, mask, None, None, f"the probe forward pass raised {type(error).__name__}: {error}")
    return Probe(ids, mask, states, output, seconds=time.perf_counter() - start)


def _worst(pairs: Sequence[Tuple[Tensor, Tensor, str]]) -> Tuple[bool, float, float, str]:
    r"""``(all within tolerance, largest diff, its tolerance, where)`` over (got, want, where) pairs."""
    passed, worst = True, (-1.0, 0.0, 0.0, "")
    for got, want, where in pairs:
        diff = float((got.float() - want.float().to(got.device)).abs().max()) if got.numel() else 0.0
        tol = tolerance(want)
        passed = passed and diff <= tol
        ratio = diff / tol if tol > 0 else (math.inf if diff > 0 else 0.0)
        if ratio > worst[0]:
            worst = (ratio, diff, tol, where)
    return passed, worst[1], worst[2], worst[3]


def check_hidden_states(adapter: ModelAdapter, probe: Probe) -> CheckResult:
    r"""Captured states ``0..L`` against the model's ``hidden_states`` (see the module docstring)."""
    fail = lambda detail: CheckResult(HIDDEN_CHECK, False, math.inf, 0.0, detail)  # noqa: E731
    if probe.states is None:
        return fail(probe.error)
    states, n = probe.states, adapter.n_layers
    if states.calls != n:
        return fail(f"the {n} blocks ran {states.calls} times in one forward pass (they are not the model's blocks)")
    length = probe.ids.shape[1]
    for layer in range(n + 1):
        got = states[layer]
        if got.dim() < 2 or got.shape[:2] != probe.ids.shape:
            where = "the input of block 0" if layer == 0 else f"block {layer}'s output"
            return fail(
                f"{where} has shape {tuple(got.shape)}: the blocks change the sequence length "
                f"(probe: {length} tokens), so no token keeps its own hidden state"
            )
    returned = getattr(probe.output, "hidden_states", None)
    if returned is None:
        return fail("the model returned no hidden_states with output_hidden_states=True")
    if len(returned) != n + 1:
        return fail(f"the model returned {len(returned)} hidden states, expected {n + 1} (embeddings + {n} blocks)")
    for layer, want in enumerate(returned[:n]):  # the last one may be after a projection (OPT's project_out)
        if want.shape != states[layer].shape:
            return fail(
                f"hidden_states[{layer}] has shape {tuple(want.shape)}, the captured state {tuple(states[layer].shape)}"
            )
    # The last entry: as captured, or after the head's first step(s) (the final norm).
    x = states[n]
    options = [(x, "as captured")] if x.shape == returned[n].shape else []
    with torch.no_grad():
        for k, step in enumerate(adapter.transform_steps):
            try:
                x = step(x)
            except Exception:  # a later head step may not apply to a whole sequence; stop there
                break
            if x.shape == returned[n].shape:
                options.append((x, f"after {k + 1} head step(s)"))
    if not options:
        return fail(
            f"hidden_states[{n}] has shape {tuple(returned[n].shape)}, the last captured state "
            f"{tuple(states[n].shape)} (and no head step gives that shape)"
        )
    best_last = min(
        (_worst([(got, returned[n], f"layer {n} {how}")]) for got, how in options),
        key=lambda r: (not r[0], r[1] / max(r[2], 1e-30)),
    )
    results = [_worst([(states[i], returned[i], f"layer {i}")]) for i in range(n)] + [best_last]
    passed = all(r[0] for r in results)
    _, diff, tol, where = max(results, key=lambda r: r[1] / max(r[2], 1e-30))
    return CheckResult(HIDDEN_CHECK, passed, diff, tol, "" if passed else f"worst at {where}")


def _logits_pairs(adapter: ModelAdapter, probe: Probe, position: Optional[int]) -> List[Tuple[Tensor, Tensor, str]]:
    logits = getattr(probe.output, "logits", None)
    if logits is None:
        raise ValueError("the model returned no logits")
    if probe.states is None:  # check_head_logits reports this before calling here
        raise ValueError("the probe captured no hidden states")
    last = probe.states[adapter.n_layers]
    with torch.no_grad():
        if adapter.task == SEQUENCE_CLASSIFICATION:
            rows = torch.arange(last.shape[0], device=last.device)
            got = adapter.logits(last[rows, position])
            return [(got, logits, f"classifier read at position {position}")]
        got = adapter.logits(last)  # LM heads: every position of the probe is a prediction
        return [(got, logits, "every position")]


def check_head_logits(adapter: ModelAdapter, probe: Probe, position: Optional[int] = None) -> CheckResult:
    r"""The adapter's head on the last captured state against the model's own logits.

    Args:
        position (int, optional): For a classifier, the token the head reads;
            default: 0 for ``prediction_at="model_output"`` (encoders pool the
            first token), the last token for ``"last_token"`` (decoders).
    """
    if probe.states is None or probe.states.calls != adapter.n_layers:
        return CheckResult(LOGITS_CHECK, False, math.inf, 0.0, "not run: the hidden-state check failed first")
    if position is None:
        position = 0 if adapter.prediction_at == "model_output" else probe.ids.shape[1] - 1
    try:
        pairs = _logits_pairs(adapter, probe, position)
    except Exception as error:
        return CheckResult(LOGITS_CHECK, False, math.inf, 0.0, f"the head raised {type(error).__name__}: {error}")
    for got, want, where in pairs:
        if got.shape != want.shape:
            return CheckResult(
                LOGITS_CHECK,
                False,
                math.inf,
                0.0,
                f"head output {tuple(got.shape)} vs model logits {tuple(want.shape)} ({where})",
            )
    passed, diff, tol, where = _worst(pairs)
    return CheckResult(LOGITS_CHECK, passed, diff, tol, where)


def verify_adapter(adapter: ModelAdapter, probe: Optional[Probe] = None) -> Verification:
    r"""Run both checks of one adapter on a probe (built and run here when not given).

    Args:
        adapter (ModelAdapter): The adapter to check; its model must accept
            ``output_hidden_states=True`` and return ``hidden_states`` and
            ``logits`` (every Hugging Face task model does).
        probe (Probe, optional): A probe already run with :func:`run_probe`.
            Default: None

    Returns:
        Verification: Both results and the seconds the probe took.
    """
    start = time.perf_counter()
    if probe is None:
        probe = run_probe(adapter, *make_probe(adapter.model))
    hidden = check_hidden_states(adapter, probe)
    logits = check_head_logits(adapter, probe)
    return Verification(hidden, logits, time.perf_counter() - start)


def refusal(model: nn.Module, what: str, verification: Verification, prefix: str = "") -> UnsupportedModelError:
    r"""The :class:`UnsupportedModelError` for a failed verification: one-line reason, details, recipe."""
    failed = verification.failed
    assert failed is not None
    numbers = (
        f"largest difference {failed.max_diff:.3g}, tolerance {failed.tolerance:.3g}"
        + (f", {failed.detail}" if failed.detail else "")
        if not math.isinf(failed.max_diff)
        else failed.detail
    )
    reason = (
        f"NormXLogit does not know {type(model).__name__}: {prefix}{what} failed its {failed.name} check ({numbers})."
    )
    lines = [reason, f"  {verification.hidden.describe()}", f"  {verification.logits.describe()}", CUSTOM_ADAPTER_HINT]
    return UnsupportedModelError("\n".join(lines))


def assert_verified(adapter: ModelAdapter) -> Verification:
    r""":func:`verify_adapter`, raising :class:`UnsupportedModelError` when a check fails."""
    verification = verify_adapter(adapter)
    if not verification.passed:
        raise refusal(adapter.model, "its adapter", verification)
    return verification
