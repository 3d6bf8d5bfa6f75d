r"""``--device``: where a command runs its model (the one GPU when there is one, else the CPU)."""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["resolve_device"]


def _available(kind: str) -> bool:
    backend = getattr(torch, kind, None)
    if kind == "mps":
        backend = getattr(torch.backends, "mps", None)
    is_available = getattr(backend, "is_available", None)
    return bool(is_available()) if callable(is_available) else False


def resolve_device(name: Optional[str], option: str = "--device") -> torch.device:
    r"""The device ``name`` names, checked to exist here; None picks ``cuda`` when available, else ``cpu``.

    Args:
        name (str, optional): ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ... Default: None
        option (str, optional): How the caller names the setting, for the message.
            Default: ``"--device"``

    Returns:
        torch.device

    Raises:
        ValueError: One sentence: the name is not a device, or that device is not here.
    """
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name.strip().lower())
    except (RuntimeError, ValueError):
        raise ValueError(f"{option} {name!r} is not a device name; pass cpu, cuda, cuda:N or mps.") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == "meta" or not _available(device.type):
        raise ValueError(f"{option} {name}: no {device.type} device is available here; pass {option} cpu.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(
            f"{option} {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
            f"numbered from 0; pass {option} cuda:0 or {option} cpu."
        )
    return device
