"""The one peak-memory meter (compare's PeakMeter and the benchmarks' VmHWM reader) sees a known allocation."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from captum_normxlogit._utils.memory import PeakMeter, rss_bytes

MIB = 2**20
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)")


def test_kernel_peak_mark_sees_an_allocation() -> None:
    # In a fresh process, as the benchmarks use it: the mark is the whole process's, and in the long-lived
    # test process freed memory of earlier tests kept the 64 MiB below the starting RSS (seen in the full suite).
    code = (
        "import torch\n"
        "from captum_normxlogit._utils.memory import peak_above, reset_peak\n"
        "before = reset_peak()\n"
        "block = torch.ones(64 * 2**20 // 4)\n"
        "assert float(block[-1]) == 1.0\n"
        "del block\n"
        "print(peak_above(before))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout.split()[-1]) >= 48  # allow for pages the allocator already held


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
