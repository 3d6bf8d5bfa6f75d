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


def _fresh(code: str, **env: str) -> str:
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "ARROW_"))}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**clean, **env}
    ).stdout.split()[-1]


# After a 4 MiB block is freed, glibc raises its mmap threshold, so a later 256 KiB block comes from the
# heap (mallinfo2's mmapped bytes do not grow); with the threshold fixed it is its own mapping again.
_THRESHOLD = (
    "import ctypes\n"
    "from captum_normxlogit._utils.memory import fix_glibc_mmap_threshold\n"
    "class M(ctypes.Structure):\n"
    "    _fields_ = [(k, ctypes.c_size_t) for k in 'arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks "
    "fordblks keepcost'.split()]\n"
    "libc = ctypes.CDLL('libc.so.6'); libc.mallinfo2.restype = M; libc.malloc.restype = ctypes.c_void_p\n"
    "libc.free.argtypes = [ctypes.c_void_p]\n"
    "libc.free(libc.malloc(4 << 20))\n"
    "fixed = fix_glibc_mmap_threshold()\n"
    "before = libc.mallinfo2().hblkhd\n"
    "block = libc.malloc(256 << 10)\n"
    "print(fixed, libc.mallinfo2().hblkhd - before >= 256 << 10, sep=',')\n"
)


def test_fixed_mmap_threshold_keeps_large_blocks_out_of_the_heap() -> None:
    assert _fresh(_THRESHOLD) == "True,True"
    # the user's own malloc settings win: nothing is changed, and glibc's rising threshold shows
    assert _fresh(_THRESHOLD, MALLOC_ARENA_MAX="4") == "False,False"


def test_steady_memory_restores_what_it_changed(monkeypatch) -> None:
    import pyarrow as pa

    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)  # the CLI tests' main() sets it in-process
    from captum_normxlogit._utils.memory import steady_memory

    pool, mkldnn = pa.default_memory_pool(), torch.backends.mkldnn.enabled
    with steady_memory(cpu_float32=True):
        assert pa.default_memory_pool().backend_name == "system"
        assert not torch.backends.mkldnn.enabled
    assert pa.default_memory_pool().backend_name == pool.backend_name
    assert torch.backends.mkldnn.enabled == mkldnn
    with steady_memory(cpu_float32=False):
        assert torch.backends.mkldnn.enabled == mkldnn  # bfloat16 and accelerators keep oneDNN


def test_arrow_pool_chosen_by_the_user_is_left_alone() -> None:
    code = (
        "import pyarrow as pa\n"
        "from captum_normxlogit._utils.memory import steady_memory\n"
        "with steady_memory(cpu_float32=True):\n"
        "    print(pa.default_memory_pool().backend_name)\n"
    )
    assert _fresh(code, ARROW_DEFAULT_MEMORY_POOL="mimalloc") == "mimalloc"


def test_attribute_dataset_runs_without_onednn_kernels_on_a_cpu() -> None:
    # oneDNN compiles and caches a GELU kernel per input shape (up to 1,024 of them): with the batches' many
    # shapes the cache grew with the rows. A plain forward uses it (verbose lines); the run must not.
    code = (
        "import sys\n"
        "from tests._support import saved as S\n"
        "from captum_normxlogit.dataset import attribute_dataset\n"
        "import torch, tempfile\n"
        "model, tok = S.classifier(), S.wordpiece()\n"
        "enc = tok(['a gorgeous , witty movie .'], return_tensors='pt')\n"
        "with torch.no_grad(): model(**enc)\n"
        "print('--run--', flush=True)\n"
        "attribute_dataset(model, tok, S.SENTENCES, tempfile.mkdtemp(prefix='onednn-'), progress=False)\n"
        "print('--end--', flush=True)\n"
    )
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={**os.environ, "ONEDNN_VERBOSE": "1", "PYTHONPATH": root},
    ).stdout
    before, run = out.split("--run--")
    assert "primitive,exec" in before  # the check can see oneDNN at work
    assert "primitive,exec" not in run.split("--end--")[0]
