r"""Length-aware batches: bounded by padded tokens, built from one shard's examples sorted by length.

Sorting only within a shard keeps the window bounded (memory does not grow with
the data, and streaming works), and padding small: examples of similar length
share a batch. Batching decides nothing about the result: every row is written
under its own ``index``, and each example's scores do not depend on its batch
mates (pads are masked), up to float rounding.
"""
from __future__ import annotations

from typing import List, Sequence

__all__ = ["token_budget_batches"]


def token_budget_batches(lengths: Sequence[int], max_tokens: int) -> List[List[int]]:
    r"""Group positions ``0..n-1`` into batches whose padded size ``count * longest`` fits ``max_tokens``.

    Longest examples come first (a batch that does not fit in memory fails at
    once, not at the end). An example longer than ``max_tokens`` gets a batch
    of its own. Ties keep the original order, so the batches are deterministic.

    Args:
        lengths (sequence of int): Token count of each example.
        max_tokens (int): Budget of ``batch_size * padded_length`` per batch.

    Returns:
        *list of list of int*: positions into ``lengths``, every one exactly once.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens_per_batch must be at least 1, got {max_tokens}.")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: List[List[int]] = []
    current: List[int] = []
    width = 0
    for i in order:
        # sorted longest first, so the first member sets the padded width
        if current and (len(current) + 1) * width > max_tokens:
            batches.append(current)
            current = []
        if not current:
            width = max(int(lengths[i]), 1)
        current.append(i)
    if current:
        batches.append(current)
    return batches
