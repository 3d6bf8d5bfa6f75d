r"""``check_model``: how NormXLogit supports one model, the checks' numbers, and the cost on a probe."""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple

import torch
from torch import nn

from captum_normxlogit._core.normxlogit import NormXLogit
from captum_normxlogit._models.adapter import ModelAdapter
from captum_normxlogit._models.verify import CheckResult, Verification, make_probe, refusal, verify_adapter
from captum_normxlogit._utils.capture import eval_mode

__all__ = ["ModelCheck", "check_model"]

REGISTERED, AUTOMATIC, REFUSED = "registered family", "verified automatic adapter", "refused"
#: Fewest timed runs per median from which :meth:`ModelCheck.format` prints a ratio of two medians.
MIN_RATIO_REPEATS = 3


@dataclass
class ModelCheck:
    r"""What :func:`check_model` found.

    Attributes:
        model_class (str): ``type(model).__name__``.
        support (str): ``"registered family"``, ``"verified automatic adapter"`` or ``"refused"``.
        reason (str): The one-line reason of a refusal (empty otherwise), the same
            first line :class:`UnsupportedModelError` carries.
        task (str or None): The head's task, when an adapter was built.
        n_layers (int or None): Number of transformer blocks.
        hidden (CheckResult or None): The hidden-state check.
        logits (CheckResult or None): The head-logits check.
        probe_shape (tuple): ``(batch, tokens)`` of the probe.
        verify_seconds (float): Wall time of the verification as it ran first
            (one probe forward pass and both checks; includes the model's own
            first-call set-up when nothing ran it before).
        verify_warm_seconds (float or None): Median wall time of the same
            verification run again (the probe's cost on a warm model).
        forward_seconds (float or None): Median wall time of a bare forward pass on the probe.
        normxlogit_seconds (float or None): Median wall time of one
            ``NormXLogit.attribute`` call on the same probe.
        repeats (int): Timed runs behind each median (0 when nothing was timed);
            :meth:`format` prints a ratio of two medians only from
            :data:`MIN_RATIO_REPEATS` runs or more.
    """

    model_class: str
    support: str
    reason: str = ""
    task: Optional[str] = None
    n_layers: Optional[int] = None
    hidden: Optional[CheckResult] = None
    logits: Optional[CheckResult] = None
    probe_shape: Tuple[int, int] = (0, 0)
    verify_seconds: float = 0.0
    verify_warm_seconds: Optional[float] = None
    forward_seconds: Optional[float] = None
    normxlogit_seconds: Optional[float] = None
    repeats: int = 0
    adapter: Optional[ModelAdapter] = field(default=None, repr=False)

    @property
    def supported(self) -> bool:
        r"""Whether NormXLogit can explain the model (a registered family or a verified automatic adapter)."""
        return self.support != REFUSED

    def format(self) -> str:
        r"""The report as plain text lines (what ``normxlogit check-model`` prints)."""
        lines = [self.model_class, f"  support: {self.support}" + (f" ({self.reason})" if self.reason else "")]
        if self.task is not None:
            lines.append(f"  task: {self.task}, {self.n_layers} layers")
        for check in (self.hidden, self.logits):
            if check is not None:
                lines.append(f"  {check.describe()}")
        batch, tokens = self.probe_shape
        # A ratio of two timings is only as good as its medians: one or two runs on a shared machine
        # can be off by several times, so a ratio is printed from MIN_RATIO_REPEATS runs up only.
        ratios = self.repeats >= MIN_RATIO_REPEATS
        if self.verify_seconds:
            line = f"  probe: {batch} x {tokens} tokens; verification took {_ms(self.verify_seconds)} on first use"
            if self.verify_warm_seconds is not None and self.forward_seconds:
                line += f", {_ms(self.verify_warm_seconds)} warm"
                if ratios:
                    line += f" ({self.verify_warm_seconds / self.forward_seconds:.2f}x a bare forward pass)"
            lines.append(line)
        if self.forward_seconds is not None and self.normxlogit_seconds is not None:
            line = (
                f"  on the probe: NormXLogit.attribute {_ms(self.normxlogit_seconds)}, bare forward "
                f"{_ms(self.forward_seconds)}"
            )
            if ratios:
                line += f" ({self.normxlogit_seconds / self.forward_seconds:.2f}x; medians of {self.repeats} runs)"
            else:
                runs = f"{self.repeats} run" + ("" if self.repeats == 1 else "s")
                line += (
                    f" (median of {runs}, too few for a ratio: --repeats {MIN_RATIO_REPEATS} or more, "
                    f"check_model(repeats={MIN_RATIO_REPEATS}) in Python, prints one)"
                )
            lines.append(line)
        return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def _median_seconds(call: Callable[[], object], repeats: int) -> float:
    call()  # warm-up: first calls pay for lazy initialisation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _time_on_probe(adapter: ModelAdapter, repeats: int) -> Tuple[float, float]:
    model = adapter.model
    ids, mask = make_probe(model)
    kwargs = adapter.forward_kwargs(ids, mask, None)
    nx = NormXLogit(model, adapter=adapter)
    target = None if adapter.is_regression else 0  # a fixed target: a masked LM needs no [MASK] then

    def bare() -> None:
        with torch.no_grad(), eval_mode(model):
            model(**kwargs)

    forward = _median_seconds(bare, repeats)
    attribute = _median_seconds(lambda: nx.attribute(ids, target=target, additional_forward_args=(mask,)), repeats)
    return forward, attribute


def check_model(model: nn.Module, repeats: int = 5) -> ModelCheck:
    r"""Report how NormXLogit supports ``model``, with both checks' numbers and its cost on a probe.

    A registered family is verified too (``NormXLogit(model, verify=True)`` runs
    the same checks); any other Hugging Face model goes through the verified
    automatic adapter. Nothing is left on the model: hooks are removed and
    training flags restored.

    Args:
        model (nn.Module): A Hugging Face task model.
        repeats (int, optional): Timed runs of each call on the probe (the
            median is reported, after one warm-up run). Default: 5

    Returns:
        ModelCheck: Use ``print(result.format())`` for the report.

    Example::

        >>> report = captum_normxlogit.check_model(model)
        >>> report.support
        'registered family'
    """
    from captum_normxlogit._models.auto import try_auto_adapter
    from captum_normxlogit._models.registry import registered_adapter, registered_family

    name = type(model).__name__
    ids, _ = make_probe(model) if hasattr(model, "get_input_embeddings") else (torch.zeros(0, 0), None)
    report = ModelCheck(name, REFUSED, probe_shape=tuple(ids.shape))  # type: ignore[arg-type]
    family = registered_family(model)
    start = time.perf_counter()
    adapter: Optional[ModelAdapter]
    verification: Optional[Verification]
    if family is not None:
        try:
            adapter = registered_adapter(model, family)
        except (NotImplementedError, AttributeError, TypeError) as error:
            report.reason = f"NormXLogit does not know {name}: its registered family refuses it ({error})"
            return report
        verification = verify_adapter(adapter)
        support = REGISTERED
    elif getattr(getattr(model, "config", None), "model_type", None) is None:
        report.reason = f"NormXLogit does not know {name}: it has no config.model_type (not a Hugging Face model)"
        return report
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the report itself says which adapter is used
            outcome = try_auto_adapter(model)
        adapter, verification = outcome.adapter, outcome.verification
        if adapter is not None and verification is None:  # verified earlier for this model: measure again
            verification = verify_adapter(adapter)
        support = AUTOMATIC
        if adapter is None:
            report.reason = outcome.reason
    report.verify_seconds = time.perf_counter() - start
    if verification is not None:
        report.hidden, report.logits = verification.hidden, verification.logits
    if adapter is None or verification is None:
        return report
    report.task, report.n_layers, report.adapter = adapter.task, adapter.n_layers, adapter
    if not verification.passed:
        report.reason = refusal(model, f"the {support}", verification).reason
        return report
    report.support = support
    report.repeats = max(1, repeats)
    report.forward_seconds, report.normxlogit_seconds = _time_on_probe(adapter, report.repeats)
    report.verify_warm_seconds = _median_seconds(lambda: verify_adapter(adapter), max(1, repeats))
    return report
