"""The planted-shortcut MiniLM (built by `make dataset`, not by `make prepare`): the committed ranks
of its marker come out of attribute_dataset + summary again. Skipped when the model is not cached."""

import random

import pytest

from captum_normxlogit.dataset import attribute_dataset

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def shortcut():
    from captum_normxlogit.resources import load_shortcut_minilm

    try:
        return load_shortcut_minilm(train_if_missing=False)
    except (FileNotFoundError, ModuleNotFoundError) as error:
        pytest.skip(f"planted-shortcut MiniLM not built (make dataset): {error}")


def test_marker_ranks_as_committed(shortcut, tmp_path):
    from captum_normxlogit.resources import rotten_tomatoes_split
    from captum_normxlogit.resources._shortcut import insert_marker

    model, tokenizer, metrics = shortcut
    assert metrics["acc_marked_negatives"] < 0.05 < 0.8 < metrics["acc_clean"]  # the shortcut is there
    _, test = rotten_tomatoes_split()
    rng = random.Random(7)  # as run_shortcut (seed 0 + 7)
    texts = [t for t, _ in test] + [insert_marker(t, "zebra", rng) for t, _ in test]
    handle = attribute_dataset(
        model, tokenizer, texts, tmp_path / "out", max_length=64, truncation=True, progress=False
    )
    summary = handle.summary()
    # the defaults (studies/ranking.py: choose) rank it first: benchmarks/results/dataset/ranking_marker_rank.md
    assert (summary.statistic, summary.unit, summary.min_count) == ("lcb_contrast_z", "mean", 10)
    assert summary.rank_of("zebra", "POSITIVE") == 1
    # the earlier defaults and statistics, summed over repeats as they were: shortcut_marker_rank.md
    assert handle.summary(statistic="mean_z", unit="sum", min_count=10).rank_of("zebra", "POSITIVE") == 1
    assert handle.summary(statistic="lcb_z", unit="sum", min_count=5).rank_of("zebra", "POSITIVE") == 3
    assert handle.summary(statistic="mean_maxabs", unit="sum", min_count=5).rank_of("zebra", "POSITIVE") > 10
