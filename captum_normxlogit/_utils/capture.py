r"""Forward hooks that keep the hidden states NormXLogit reads, and the per-model lock around them.

Hooks and the eval-mode switch act on the whole model, which other threads may be using too, so:

* every hooked pass on a model runs under that model's :func:`model_lock` (shared by every
  ``NormXLogit`` on the model), so two attributions never interleave their hooks or mode switches;
* the hooks act only for the thread that installed them: a forward pass the model runs in another
  thread meanwhile calls them, and they do nothing there;
* :func:`eval_mode` touches no flag when the model is already in eval mode (the usual case), so a
  concurrent forward pass in another thread sees the model exactly as it was.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Any, Dict, Iterable, Iterator, List, Tuple

from torch import Tensor, nn

__all__ = ["HiddenStates", "capture_hidden_states", "eval_mode", "model_lock"]

_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model: nn.Module) -> threading.RLock:
    r"""The one re-entrant lock of ``model``, shared by every attribution on it.

    Held by :class:`~captum_normxlogit.NormXLogit` (and :class:`~captum_normxlogit.LLMNormXLogit`)
    around each hooked forward pass and eval-mode switch. Kept in a weak dictionary, so it lives
    exactly as long as the model.
    """
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


def _first_tensor(value: Any, where: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], Tensor):
        return value[0]
    raise TypeError(f"Expected a tensor (or a tuple starting with one) at {where}, got {type(value).__name__}.")


class HiddenStates:
    r"""Hidden states captured during one forward pass, by layer index ``0..L``.

    Index 0 is the input of the first block (the embedding output, HF's
    ``hidden_states[0]``); index ``l`` is the output of the ``l``-th block call.
    """

    def __init__(self, n_layers: int, wanted: Iterable[int]) -> None:
        self.n_layers = n_layers
        self.wanted = set(wanted)
        self.states: Dict[int, Tensor] = {}
        self.calls = 0
        self.output: Any = None  # what the runner returned

    def __getitem__(self, layer: int) -> Tensor:
        return self.states[layer]

    def check_complete(self) -> None:
        r"""Fail loudly if the blocks did not run exactly once each, in order."""
        if self.calls != self.n_layers:
            raise RuntimeError(
                f"Expected {self.n_layers} transformer-block calls in one forward pass, saw {self.calls}; "
                "the adapter's blocks do not match how this model runs."
            )


def _remove_hooks(handles: List[Any]) -> None:
    for handle in handles:
        handle.remove()


@contextmanager
def capture_hidden_states(blocks: List[nn.Module], wanted: Iterable[int]) -> Iterator[HiddenStates]:
    r"""Register hooks on ``blocks`` that keep the hidden states in ``wanted``.

    The hooks record only calls made by the thread that entered this context (the model may run in
    other threads meanwhile), and they are removed on exit, also when the forward pass raises.
    """
    record = HiddenStates(len(blocks), wanted)
    owner = threading.get_ident()
    handles: List[Any] = []

    def pre_hook(module: nn.Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
        if threading.get_ident() != owner:
            return
        if record.calls == 0 and 0 in record.wanted and 0 not in record.states:
            value = args[0] if args else kwargs.get("hidden_states")
            record.states[0] = _first_tensor(value, "the input of the first transformer block")

    def hook(module: nn.Module, args: Tuple[Any, ...], output: Any) -> None:
        if threading.get_ident() != owner:
            return
        record.calls += 1
        if record.calls in record.wanted:
            record.states[record.calls] = _first_tensor(output, f"the output of block {record.calls}")

    try:
        handles.append(blocks[0].register_forward_pre_hook(pre_hook, with_kwargs=True))
        for module in dict.fromkeys(blocks):  # unique, in order: ALBERT repeats one module
            handles.append(module.register_forward_hook(hook))
        yield record
    finally:
        try:
            _remove_hooks(handles)
        except BaseException:  # interrupted (Ctrl-C) while cleaning up: finish it, then re-raise
            _remove_hooks(handles)
            raise


def _restore_training(modules: List[nn.Module]) -> None:
    for module in modules:
        module.training = True


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    r"""Run in eval mode and restore every submodule's ``training`` flag afterwards.

    A model already in eval mode is not touched at all. A model in training mode is switched as a
    whole (``training`` is one flag per module, not per thread): a forward pass another thread runs
    on it meanwhile runs in eval mode too. Holds :func:`model_lock` throughout, so no other
    attribution sees the switched flags or restores them under it.
    """
    with model_lock(model):
        training = [m for m in model.modules() if m.training]
        if not training:  # the usual case: touch nothing (flag writes cost ~ms on big models)
            yield
            return
        try:
            model.eval()
            yield
        finally:
            try:
                _restore_training(training)
            except BaseException:  # interrupted while restoring: finish it, then re-raise
                _restore_training(training)
                raise
