"""token_budget_batches: every position once, the budget kept, longest first, and optimal cuts.

Checked against an independent greedy rule (fill each batch up to the budget,
the earlier batching) and an exhaustive search over every way to cut a short
sorted list into consecutive runs.
"""

import itertools
import random

import pytest

from captum_normxlogit.dataset import api
from captum_normxlogit.dataset._batching import CPU_BATCH_OVERHEAD_TOKENS, token_budget_batches
from tests._support import saved as S


def _padded(lengths, batches):
    return sum(len(b) * max(max(lengths[i], 1) for i in b) for b in batches)


def _greedy(lengths, budget):
    """Longest first; a batch takes examples until one more would exceed the budget."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * max(lengths[batches[-1][0]], 1) <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _brute_force(lengths, budget, overhead):
    """Least padded + overhead * batches over every cut of the sorted list (2 ** (n - 1) candidates)."""
    widths = sorted((max(x, 1) for x in lengths), reverse=True)
    n, best = len(widths), None
    for cuts in itertools.product((False, True), repeat=n - 1):
        bounds = [0] + [k + 1 for k, c in enumerate(cuts) if c] + [n]
        runs = list(zip(bounds[:-1], bounds[1:]))
        if any(b - a > 1 and (b - a) * widths[a] > budget for a, b in runs):
            continue
        padded = sum((b - a) * widths[a] for a, b in runs)
        cost = (len(runs), padded) if overhead is None else (padded + overhead * len(runs),)
        best = cost if best is None else min(best, cost)
    return best


def _random_lengths(rng, n):
    shape = rng.choice(["short", "wide", "ties"])
    if shape == "short":
        return [rng.randint(3, 40) for _ in range(n)]
    if shape == "wide":
        return [int(rng.lognormvariate(3, 1)) + 1 for _ in range(n)]
    return [rng.choice([5, 6, 12, 30]) for _ in range(n)]


def _check_valid(lengths, budget, batches):
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))  # every position exactly once
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= budget
    widths = [max(lengths[i] for i in b) for b in batches]
    assert widths == sorted(widths, reverse=True)  # longest batch first
    flat = [i for b in batches for i in b]
    assert flat == sorted(flat, key=lambda i: (-lengths[i], i))  # consecutive runs of the sorted order


@pytest.mark.parametrize("overhead", [None, 0, 32, 1000])
def test_random_lengths_valid_and_never_more_padding_than_greedy(overhead):
    rng = random.Random(12)
    for _ in range(60):
        lengths = _random_lengths(rng, rng.randint(1, 300))
        budget = rng.choice([8, 64, 512, 2048, 8192])
        batches = token_budget_batches(lengths, budget, overhead)
        _check_valid(lengths, budget, batches)
        greedy = _greedy(lengths, budget)
        assert _padded(lengths, batches) <= _padded(lengths, greedy)
        if overhead is None:  # the greedy rule has the fewest batches; None keeps that count
            assert len(batches) == len(greedy)
        if overhead == 0:  # nothing against more batches: only one length per batch, no padding at all
            assert _padded(lengths, batches) == sum(max(x, 1) for x in lengths)
        assert token_budget_batches(lengths, budget, overhead) == batches  # deterministic


@pytest.mark.parametrize("overhead", [None, 0, 3, 32])
def test_optimal_against_exhaustive_search(overhead):
    rng = random.Random(7)
    for _ in range(40):
        lengths = [rng.randint(1, 12) for _ in range(rng.randint(1, 10))]
        budget = rng.choice([6, 12, 24, 40])
        batches = token_budget_batches(lengths, budget, overhead)
        _check_valid(lengths, budget, batches)
        padded = _padded(lengths, batches)
        found = (len(batches), padded) if overhead is None else (padded + overhead * len(batches),)
        assert found == _brute_force(lengths, budget, overhead)


def test_small_case_by_hand():
    lengths = [3, 9, 1, 9, 4, 4, 2]
    # sorted: 9 9 4 4 3 2 1; three batches at least; the greedy [4 4 3 2] [1] pads to 16 + 1,
    # cutting [4 4 3] [2 1] to 12 + 4
    assert token_budget_batches(lengths, 18) == [[1, 3], [4, 5, 0], [6, 2]]
    assert token_budget_batches(lengths, 18, 0) == [[1, 3], [4, 5], [0], [6], [2]]
    assert token_budget_batches([50], 10) == [[0]]  # longer than the budget: alone
    assert token_budget_batches([], 10) == []
    assert token_budget_batches([0, 2], 10) == [[1, 0]]  # an empty example still takes a slot


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_tokens_per_batch"):
        token_budget_batches([1], 0)
    with pytest.raises(ValueError, match="overhead_tokens"):
        token_budget_batches([1], 10, -1)


def test_attribute_dataset_on_a_cpu_cuts_with_the_cpu_overhead(tmp_path, monkeypatch):
    seen = []

    def spy(lengths, max_tokens, overhead_tokens=None):
        seen.append((list(lengths), max_tokens, overhead_tokens))
        return token_budget_batches(lengths, max_tokens, overhead_tokens)

    monkeypatch.setattr(api, "token_budget_batches", spy)
    res = api.attribute_dataset(
        S.classifier(),
        S.wordpiece(),
        S.SENTENCES,
        tmp_path / "out",
        shard_size=4,
        max_tokens_per_batch=40,
        progress=False,
    )
    assert res.to_pandas()["index"].tolist() == list(range(len(S.SENTENCES)))
    assert seen and all(max_tokens == 40 and overhead == CPU_BATCH_OVERHEAD_TOKENS for _, max_tokens, overhead in seen)
