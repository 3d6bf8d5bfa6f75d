r"""Length-aware batches: bounded by padded tokens, built from one shard's examples sorted by length.

Sorting only within a shard keeps the window bounded (memory does not grow with
the data, and streaming works), and padding small: examples of similar length
share a batch. Batching decides nothing about the result: every row is written
under its own ``index``, and each example's scores do not depend on its batch
mates (pads are masked), up to float rounding.

Where to cut the sorted shard is an exact dynamic programme: it minimises
``padded tokens + overhead_tokens * number of batches`` subject to the token
budget, i.e. a model of the run time in which a batch costs its padded tokens
plus a fixed amount. Filling each batch up to the budget (the earlier, greedy
rule) gives the fewest batches but lets one batch of short sentences span a
wide range of lengths; the programme pays a batch more where that removes
more padding than the batch costs.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

__all__ = ["token_budget_batches", "CPU_BATCH_OVERHEAD_TOKENS"]

# Fixed cost of one NormXLogit batch on a CPU in padded-token equivalents (hooks, the
# attribution call, tensor set-up): benchmarks/bench_batch_cost.py on the fine-tuned MiniLM,
# 1 thread, found 22 to 95 depending on the width (benchmarks/results/bench_batch_cost_cpu.md);
# the cuts hardly move in that range: on the 4,000 Rotten-Tomatoes sentences, the batches cut
# with 64 cost (padded + true overhead x batches) within 0.7 % of the best cut for a true
# overhead of 22 or of 95.
CPU_BATCH_OVERHEAD_TOKENS = 64


def token_budget_batches(
    lengths: Sequence[int], max_tokens: int, overhead_tokens: Optional[int] = None
) -> List[List[int]]:
    r"""Group positions ``0..n-1`` into batches whose padded size ``count * longest`` fits ``max_tokens``.

    The positions are sorted longest first (ties in the original order) and cut
    into consecutive runs by an exact dynamic programme minimising
    ``sum(count * longest) + overhead_tokens * n_batches``. Longest examples come
    first (a batch that does not fit in memory fails at once, not at the end).
    An example longer than ``max_tokens`` gets a batch of its own. The result
    depends only on ``lengths`` and the two numbers, so it is deterministic.

    Args:
        lengths (sequence of int): Token count of each example.
        max_tokens (int): Budget of ``batch_size * padded_length`` per batch.
        overhead_tokens (int, optional): Fixed cost of one batch, in padded
            tokens. None: as few batches as the budget allows (as many as
            filling each batch up to the budget gives), and the least padding
            among those: for accelerators, where a batch under the budget costs
            about as much as a full one. Default: None

    Returns:
        *list of list of int*: positions into ``lengths``, every one exactly once.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens_per_batch must be at least 1, got {max_tokens}.")
    if overhead_tokens is not None and overhead_tokens < 0:
        raise ValueError(f"overhead_tokens must be None or non-negative, got {overhead_tokens}.")
    n = len(lengths)
    if n == 0:
        return []
    order = sorted(range(n), key=lambda i: (-lengths[i], i))
    width = np.array([max(int(lengths[i]), 1) for i in order], dtype=np.int64)
    # None: one batch outweighs any padding the shard can have (at most n * longest), so the count comes first
    overhead = n * int(width[0]) + 1 if overhead_tokens is None else int(overhead_tokens)
    # best[j]: least cost of the first j sorted examples; cut[j]: where its last batch starts
    best = np.full(n + 1, np.iinfo(np.int64).max, dtype=np.int64)
    best[0] = 0
    cut = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):  # a batch starting at sorted position i is padded to width[i]
        room = min(max(max_tokens // int(width[i]), 1), n - i)
        ends = slice(i + 1, i + room + 1)
        cost = best[i] + overhead + width[i] * np.arange(1, room + 1, dtype=np.int64)
        better = cost < best[ends]  # strict: on a tie the earlier start (the longer batch before it) stays
        best[ends] = np.where(better, cost, best[ends])
        cut[ends] = np.where(better, i, cut[ends])
    bounds = [n]
    while bounds[-1] > 0:
        bounds.append(int(cut[bounds[-1]]))
    bounds.reverse()
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
