r"""
Peak-memory measurement, one home for :func:`captum_normxlogit.compare` and
the benchmarks.

Two ways to measure, for two settings:

- :class:`PeakMeter` measures a block of code inside a running process that
  goes on doing other things (``compare`` times and measures each method in
  turn): on CUDA it reads the allocator's peak, on the CPU a background thread
  samples the resident set size (RSS) every 2 ms.
- :func:`reset_peak` / :func:`peak_above` read the kernel's own peak-RSS mark
  (``VmHWM``, reset through ``/proc/self/clear_refs``; Linux only): exact, but
  for the whole process, so the benchmarks measure one call per fresh process::

      before = reset_peak()
      run_the_call()
      print(peak_above(before))  # MiB above the RSS the call started from
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import threading
import time
from typing import Any, Optional

import torch

__all__ = ["PeakMeter", "peak_above", "release_memory", "reset_peak", "rss_bytes", "status_mib"]


def rss_bytes() -> Optional[int]:
    r"""The process's resident set size in bytes, or None where ``/proc/self/statm`` cannot be read."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def return_freed_heap() -> None:
    r"""Hands the heap pages this process has freed back to the OS (glibc's ``malloc_trim``; a no-op
    elsewhere). Between shards of a long run: batches of ever-changing shapes fragment glibc's heap,
    and without it the freed-but-resident pages pile up shard after shard."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def release_memory() -> None:
    r"""Collects garbage and, on Linux, hands freed heap pages back, so RSS starts from what is in use."""
    gc.collect()
    return_freed_heap()


class PeakMeter:
    r"""
    Wall time and peak memory of everything run inside ``with``, summed (time)
    and maximised (peak) over several entries.

    Args:
        device (torch.device): ``cuda`` reads ``torch.cuda.max_memory_allocated``
            above what was allocated on entry; anything else samples the RSS
            above its value on entry.

    Attributes:
        seconds (float): Wall time inside the block, over every entry.
        peak (int): Largest peak over the entries, in bytes.
        available (bool): False on a CPU where the RSS cannot be read
            (``peak`` then stays 0 and means nothing).
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.seconds, self.peak = 0.0, 0
        self.available = self.cuda or rss_bytes() is not None

    def __enter__(self) -> "PeakMeter":
        release_memory()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
        elif self.available:
            self._base = self._high = rss_bytes() or 0
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self._start = time.perf_counter()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._high = max(self._high, rss_bytes() or 0)

    def __exit__(self, *exc: Any) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - self._start
        if self.cuda:
            self.peak = max(self.peak, torch.cuda.max_memory_allocated() - self._base)
        elif self.available:
            self._stop.set()
            self._thread.join()
            self._high = max(self._high, rss_bytes() or 0)
            self.peak = max(self.peak, self._high - self._base)


def status_mib(field: str) -> float:
    r"""A ``/proc/self/status`` field (``VmRSS``, ``VmHWM``) in MiB.

    Args:
        field (str): The field's name.

    Raises:
        RuntimeError: where the field is missing (not Linux).
    """
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB -> MiB
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def reset_peak() -> float:
    r"""Resets the kernel's peak-RSS mark (``VmHWM``) to the current RSS and returns that RSS in MiB."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    return status_mib("VmRSS")


def peak_above(before: float) -> float:
    r"""Peak RSS since :func:`reset_peak` minus ``before`` (what it returned), in MiB."""
    return status_mib("VmHWM") - before
