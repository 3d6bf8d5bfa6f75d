r"""Ranks: who computes which shard, on which device, and when everyone has finished.

Under ``torchrun --nproc_per_node N`` or ``accelerate launch --num_processes N``
the environment names a world of ``N`` processes; ``accelerate``'s
``PartialState`` joins it (gloo on CPU: ``MULTI_CPU``; NCCL on GPUs:
``MULTI_GPU``, one device per rank). Shard ``k`` belongs to rank ``k % N``, so
each rank writes its own files and the folder is the same whatever ``N`` is.
A single process (no such environment) needs no ``accelerate`` at all.

Ranks or ``device_map="auto"``? Ranks copy the model to every device and split
the *examples*: use them when the model fits on one device (throughput grows
with the devices). A model too large for one device is loaded once with
``device_map="auto"`` (layers spread over devices / CPU / disk) and run in
**one** process; :func:`rank_context` refuses to combine the two.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

__all__ = ["RankContext", "rank_context"]


@dataclass
class RankContext:
    r"""This process's place in the run.

    Attributes:
        rank (int): 0 .. world_size - 1.
        world_size (int): Number of processes.
        device (torch.device or None): Where this rank runs the model; None
            leaves the model where it is (single process, or ``device_map``).
    """

    rank: int
    world_size: int
    device: Optional[torch.device]
    _barrier: Optional[Callable[[], None]] = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, shard: int) -> bool:
        r"""Whether this rank computes shard ``shard``."""
        return shard % self.world_size == self.rank

    def barrier(self) -> None:
        r"""Wait until every rank gets here (no-op for one process)."""
        if self._barrier is not None:
            self._barrier()


def _launched_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def rank_context(model: nn.Module) -> RankContext:
    r"""Join the launcher's process group when there is one, and pick this rank's device.

    Returns:
        RankContext

    Raises:
        RuntimeError: Several ranks but the model is spread with ``device_map``.
    """
    if _launched_world_size() <= 1:
        return RankContext(0, 1, None)
    device_map = getattr(model, "hf_device_map", None)
    if device_map and len(set(map(str, device_map.values()))) > 1:
        raise RuntimeError(
            "this model is spread over several devices with device_map; run it in ONE process (not under "
            "torchrun / accelerate launch with several processes), or load it whole on each rank's device."
        )
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    device = torch.device(state.device)
    return RankContext(int(state.process_index), int(state.num_processes), device, state.wait_for_everyone)


def move_to(model: nn.Module, ctx: RankContext) -> Any:
    r"""Put the model on this rank's device (a model already there is left alone)."""
    if ctx.device is None:
        return model
    first = next(model.parameters(), None)
    if first is not None and first.device != ctx.device:
        model.to(ctx.device)
    return model
