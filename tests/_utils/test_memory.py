"""The one peak-memory meter (compare's PeakMeter and the benchmarks' VmHWM reader) sees a known allocation."""
from __future__ import annotations

import sys

import pytest
import torch

from captum_normxlogit._utils.memory import PeakMeter, peak_above, release_memory, reset_peak, rss_bytes

MIB = 2**20
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")


def _allocate(mib: int) -> None:
    block = torch.ones(mib * MIB // 4)  # float32, every page written
    assert float(block[-1]) == 1.0
    del block


def test_kernel_peak_mark_sees_an_allocation() -> None:
    # Free what earlier tests left first: a garbage collection during the allocation below would
    # otherwise return more than 64 MiB and keep the RSS under its starting mark (seen in the full suite).
    release_memory()
    before = reset_peak()
    _allocate(64)
    assert peak_above(before) >= 48  # allow for pages the allocator already held


def test_peak_meter_sees_an_allocation_and_sums_time() -> None:
    assert rss_bytes() is not None
    meter = PeakMeter(torch.device("cpu"))
    assert meter.available
    with meter:
        block = torch.ones(64 * MIB // 4)  # still held at exit, so the exit reading sees it whatever the sampler saw
    del block
    first = meter.seconds
    with meter:
        pass
    assert meter.peak >= 48 * MIB
    assert meter.seconds >= first > 0
