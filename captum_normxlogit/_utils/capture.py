r"""Forward hooks that keep the hidden states NormXLogit reads, and nothing else."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Dict, Iterable, Iterator, List, Tuple

from torch import Tensor, nn

__all__ = ["HiddenStates", "capture_hidden_states", "eval_mode"]


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


@contextmanager
def capture_hidden_states(blocks: List[nn.Module], wanted: Iterable[int]) -> Iterator[HiddenStates]:
    r"""Register hooks on ``blocks`` that keep the hidden states in ``wanted``.

    Hooks are removed on exit, also when the forward pass raises.
    """
    record = HiddenStates(len(blocks), wanted)
    handles = []

    def pre_hook(module: nn.Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
        if record.calls == 0 and 0 in record.wanted and 0 not in record.states:
            value = args[0] if args else kwargs.get("hidden_states")
            record.states[0] = _first_tensor(value, "the input of the first transformer block")

    def hook(module: nn.Module, args: Tuple[Any, ...], output: Any) -> None:
        record.calls += 1
        if record.calls in record.wanted:
            record.states[record.calls] = _first_tensor(output, f"the output of block {record.calls}")

    try:
        handles.append(blocks[0].register_forward_pre_hook(pre_hook, with_kwargs=True))
        for module in dict.fromkeys(blocks):  # unique, in order: ALBERT repeats one module
            handles.append(module.register_forward_hook(hook))
        yield record
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    r"""Run in eval mode and restore every submodule's ``training`` flag afterwards."""
    training = [m for m in model.modules() if m.training]
    if not training:  # the usual case: touch nothing (flag writes cost ~ms on big models)
        yield
        return
    try:
        model.eval()
        yield
    finally:
        for module in training:
            module.training = True
