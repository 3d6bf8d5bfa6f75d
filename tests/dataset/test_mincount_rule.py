"""The rule that decides the default minimum count from the RT run, and the target/other
correlation the README quotes, on hand-made tables."""
import math
from pathlib import Path

import numpy as np
import pandas as pd

from captum_normxlogit._experiments.dataset_mincount import target_other_correlation, verdict
from captum_normxlogit.dataset.summary import DEFAULT_MIN_COUNT, DEFAULT_STATISTIC


def _agreement(values):
    """values: min_count -> ((spearman NEG, spearman POS), (effect NEG, effect POS))."""
    rows = []
    for m, (rho, eff) in values.items():
        for cls, r, e in zip(("NEGATIVE", "POSITIVE"), rho, eff):
            rows.append({"class": cls, "statistic": "lcb_z", "min_count": m, "spearman": r, "effect_at_k": e})
            rows.append({"class": cls, "statistic": "mean", "min_count": m, "spearman": 1.0, "effect_at_k": 1.0})
    return pd.DataFrame(rows)


def test_a_larger_count_wins_only_when_at_least_as_good_on_both_and_the_smallest_such_wins():
    worse = _agreement({5: ((0.7, 0.5), (0.2, 0.1)), 10: ((0.8, 0.6), (0.2, 0.05))})  # better rho, worse effect
    assert verdict(worse, statistic="lcb_z", current=5)["choice"] == 5
    better = _agreement({5: ((0.7, 0.5), (0.2, 0.1)), 10: ((0.7, 0.5), (0.2, 0.1)), 20: ((0.9, 0.9), (0.3, 0.3))})
    out = verdict(better, statistic="lcb_z", current=5)
    assert out["qualifying"] == [10, 20] and out["choice"] == 10  # equal counts as good enough
    assert out["per_min_count"][20] == {"spearman": 0.9, "effect_at_k": 0.3}
    missing = _agreement({5: ((0.7, 0.5), (0.2, 0.1)), 20: ((math.nan, 0.9), (0.3, 0.3))})
    assert verdict(missing, statistic="lcb_z", current=5)["choice"] == 5  # a class without words is no win


def test_committed_verdict_matches_the_committed_table_and_the_default():
    table = pd.read_csv(Path(__file__).parents[2] / "benchmarks/results/dataset/rt_mincount.csv")
    mine = table[table["statistic"] == DEFAULT_STATISTIC].set_index("min_count")
    per = {m: (round((r["spearman NEGATIVE"] + r["spearman POSITIVE"]) / 2, 2),
               round((r["effect_at_k NEGATIVE"] + r["effect_at_k POSITIVE"]) / 2, 3)) for m, r in mine.iterrows()}
    larger = [m for m in per if m > DEFAULT_MIN_COUNT and per[m][0] >= per[DEFAULT_MIN_COUNT][0]
              and per[m][1] >= per[DEFAULT_MIN_COUNT][1]]
    assert (min(larger) if larger else DEFAULT_MIN_COUNT) == DEFAULT_MIN_COUNT  # the default is what the rule says


def test_target_other_correlation_by_hand():
    rng = np.random.default_rng(0)
    tokens, target, other = [], [], []
    for n in (4, 6, 5):
        s = rng.normal(size=n + 2)
        tokens.append(["[CLS]"] + [f"w{i}" for i in range(n)] + ["[SEP]"])
        target.append(list(s))
        other.append(list(-2.0 * s + rng.normal() + 0.01 * rng.normal(size=n + 2)))
    out = target_other_correlation(pd.DataFrame({"tokens": tokens, "scores": target}),
                                   pd.DataFrame({"tokens": tokens, "scores": other}), ["[CLS]", "[SEP]"])
    t = np.concatenate([np.asarray(s)[1:-1] for s in target])
    o = np.concatenate([np.asarray(s)[1:-1] for s in other])
    assert out["tokens"] == t.size == 15 and out["sentences"] == 3
    assert math.isclose(out["pearson_target_other_pooled"], float(np.corrcoef(t, o)[0, 1]), rel_tol=1e-9)
    assert out["pearson_target_other_median_within_sentence"] < -0.99
    assert out["pearson_z_plain_vs_z_contrastive_pooled"] > 0.99  # t - o = 3 t - c: same standardised ranking
