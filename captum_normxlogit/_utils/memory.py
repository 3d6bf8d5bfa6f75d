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

import contextlib
import ctypes
import gc
import os
import sys
import threading
import time
from typing import Any, Iterator, Optional

import torch

__all__ = [
    "PeakMeter",
    "fix_glibc_mmap_threshold",
    "peak_above",
    "release_memory",
    "reset_peak",
    "rss_bytes",
    "status_mib",
    "steady_memory",
]

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
#: glibc's own starting value of the mmap threshold, kept fixed by :func:`fix_glibc_mmap_threshold`.
MMAP_THRESHOLD = 128 * 1024
_THRESHOLD_FIXED = False


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


def fix_glibc_mmap_threshold() -> bool:
    r"""Keeps glibc's mmap threshold at its starting 128 KiB for the rest of the process (``mallopt``).

    glibc raises the threshold after each freed large block, up to 32 MiB, so that
    later activation buffers come from the heap instead of fresh mappings; batches
    of ever-changing shapes then fragment the heap, and a long run's resident
    memory grows with the rows. With the threshold fixed, every block of 128 KiB
    or more is its own mapping, returned to the system when freed.

    Safe at any time: ``mallopt`` changes only where later blocks come from, and
    every block is freed the way it was allocated. Done once per process, only on
    glibc, and not when the user chose for themselves (any ``MALLOC_*`` variable,
    or ``malloc`` in ``GLIBC_TUNABLES``).

    Returns:
        *bool*: whether the threshold is fixed (by this call or an earlier one).
    """
    global _THRESHOLD_FIXED
    if _THRESHOLD_FIXED:
        return True
    if not sys.platform.startswith("linux") or any(key.startswith("MALLOC_") for key in os.environ):
        return False
    if "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        if not hasattr(libc, "gnu_get_libc_version"):  # only glibc has it (musl and others: leave them alone)
            return False
        _THRESHOLD_FIXED = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    except (OSError, AttributeError):
        return False
    return _THRESHOLD_FIXED


@contextlib.contextmanager
def steady_memory(cpu_float32: bool) -> Iterator[None]:
    r"""Allocator settings under which a long streaming run's resident memory stays flat.

    Measured one at a time by ``benchmarks/bench_dataset.py --parts rss``:

    - glibc's mmap threshold fixed (:func:`fix_glibc_mmap_threshold`; kept after
      the block, it cannot be undone);
    - Arrow's default pool set to the system allocator inside the block
      (mimalloc keeps the pages of every shard's freed buffers), unless the user
      set ``ARROW_DEFAULT_MEMORY_POOL``; the previous pool is restored after (a
      buffer remembers its pool, so it is freed correctly either way);
    - ``cpu_float32``: oneDNN switched off inside the block
      (``torch.backends.mkldnn``, restored after). On a CPU in float32 it serves
      only GELU in the BERT models measured, and caches a compiled kernel for every input shape (up to
      1,024); the batches' many shapes made that cache grow with the rows. For
      other dtypes it is left on (oneDNN is the fast path for bfloat16 on CPUs).

    Args:
        cpu_float32 (bool): The model runs on a CPU in float32.
    """
    fix_glibc_mmap_threshold()
    previous_pool = None
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        import pyarrow as pa

        previous_pool = pa.default_memory_pool()
        pa.set_memory_pool(pa.system_memory_pool())
    mkldnn = torch.backends.mkldnn.enabled
    if cpu_float32:
        torch.backends.mkldnn.enabled = False  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = mkldnn
        if previous_pool is not None:
            import pyarrow as pa

            pa.set_memory_pool(previous_pool)


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
