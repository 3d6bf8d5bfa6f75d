"""Peak resident memory of the current process (Linux /proc), shared by the CPU benchmarks.

Each benchmark measures one call per fresh process: ``before = reset_peak()`` just before the call,
``peak_above(before)`` after it gives the new peak RSS above the RSS the call started from.
"""
from __future__ import annotations

__all__ = ["peak_above", "reset_peak", "status_mib"]


def status_mib(field: str) -> float:
    """A ``/proc/self/status`` field (``VmRSS``, ``VmHWM``) in MiB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB -> MiB
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def reset_peak() -> float:
    """Reset the peak-RSS mark (VmHWM) to the current RSS and return that RSS in MiB."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    return status_mib("VmRSS")


def peak_above(before: float) -> float:
    """Peak RSS since :func:`reset_peak` minus ``before``, in MiB."""
    return status_mib("VmHWM") - before
