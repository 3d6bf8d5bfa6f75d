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
import re
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence

import torch
from torch import nn

__all__ = ["RankContext", "RankLostError", "rank_context"]


class RankLostError(RuntimeError):
    r"""Another rank of the run is gone (its node died or was stopped): relaunch the whole job to resume."""

    def __init__(self, rank: int, error: BaseException) -> None:
        reason = " ".join(str(error).split())
        reason = re.sub(r"^\[[^\]]*\]\s*", "", reason).split(". ")[0][:200]  # gloo's source location off
        super().__init__(
            f"rank {rank} lost contact with another rank of the run ({reason}); relaunch the whole job with the "
            "same command: finished shards are kept."
        )
        self.rank = rank


def _guarded(rank: int, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except RuntimeError as error:  # gloo / NCCL: a peer's connection closed or reset, a timeout
        raise RankLostError(rank, error) from error


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
    _start_sum: Optional[Callable[[Sequence[int]], Callable[[], List[int]]]] = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, shard: int) -> bool:
        r"""Whether this rank computes shard ``shard``."""
        return shard % self.world_size == self.rank

    def barrier(self) -> None:
        r"""Wait until every rank gets here (no-op for one process)."""
        if self._barrier is not None:
            _guarded(self.rank, self._barrier)

    def start_sum(self, values: Sequence[int]) -> Callable[[], List[int]]:
        r"""Start summing ``values`` over the ranks; the returned function waits for the sums.

        Every rank must call it the same number of times, in the same order.
        One process: the values themselves.
        """
        start = self._start_sum
        if start is None:
            summed = [int(v) for v in values]
            return lambda: summed
        wait = _guarded(self.rank, lambda: start(values))
        return lambda: _guarded(self.rank, wait)


def _launched_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def _all_reduce_sum(device: torch.device) -> Callable[[Sequence[int]], Callable[[], List[int]]]:
    import torch.distributed as dist

    def start(values: Sequence[int]) -> Callable[[], List[int]]:
        tensor = torch.tensor(list(values), dtype=torch.int64, device=device)  # NCCL sums on the GPU
        work = dist.all_reduce(tensor, op=dist.ReduceOp.SUM, async_op=True)

        def wait() -> List[int]:
            if work is not None:
                work.wait()
            return [int(v) for v in tensor.tolist()]

        return wait

    return start


def rank_context(model: nn.Module, device: Optional[torch.device] = None) -> RankContext:
    r"""Join the launcher's process group when there is one, and pick this rank's device.

    Args:
        model (nn.Module): The model to run.
        device (torch.device, optional): One process: move the model there
            (None leaves it where it is). Several ranks: ``cpu`` runs every rank
            on the CPU (gloo), ``cuda`` gives each rank its own GPU; None picks
            the GPUs when there are any. Default: None

    Returns:
        RankContext

    Raises:
        RuntimeError: Several ranks but the model is spread with ``device_map``.
        ValueError: Several ranks and ``device`` names one GPU (``cuda:1``).
    """
    if _launched_world_size() <= 1:
        return RankContext(0, 1, device)
    if device is not None and device.type != "cpu" and device.index is not None:
        raise ValueError(
            f"device {device} names one GPU, but under torchrun / accelerate launch each rank takes its own; "
            f"pass device {device.type!r} (or 'cpu')."
        )
    device_map = getattr(model, "hf_device_map", None)
    if device_map and len(set(map(str, device_map.values()))) > 1:
        raise RuntimeError(
            "this model is spread over several devices with device_map; run it in ONE process (not under "
            "torchrun / accelerate launch with several processes), or load it whole on each rank's device."
        )
    from accelerate import PartialState

    on_cpu = device.type == "cpu" if device is not None else not torch.cuda.is_available()
    state = PartialState(cpu=on_cpu)
    rank_device = torch.device(state.device)
    return RankContext(
        int(state.process_index),
        int(state.num_processes),
        rank_device,
        state.wait_for_everyone,
        _all_reduce_sum(rank_device),
    )


def move_to(model: nn.Module, ctx: RankContext) -> Any:
    r"""Put the model on this rank's device (a model already there is left alone)."""
    if ctx.device is None:
        return model
    first = next(model.parameters(), None)
    if first is not None and first.device != ctx.device:
        model.to(ctx.device)
    return model
