r"""Quiet loading of transformers models: its warnings and loading bars off for a while."""

from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["quiet_transformers"]


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    r"""Silence transformers' warnings and loading bars (we report length and progress ourselves).

    The previous verbosity and progress-bar setting are restored on exit, also after an error.
    """
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
