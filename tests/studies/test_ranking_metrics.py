"""studies.ranking_metrics: recall@K, noise@10 and the verified order, against sets counted by hand."""

import pandas as pd

from captum_normxlogit.dataset import summarize
from studies.ranking_metrics import ranking_metrics, verified_top


def _summary():
    # twelve words w0..w11 in class A, each in 3 examples; w_i's score grows with i
    rows = []
    for r in range(3):
        tokens = ["[CLS]"] + [f"w{i}" for i in range(12)] + ["[SEP]"]
        scores = [0.0] + [float(i) + 0.1 * r for i in range(12)] + [0.0]
        rows.append((tokens, scores))
    frame = pd.DataFrame({"tokens": [t for t, _ in rows], "scores": [s for _, s in rows], "target_label": ["A"] * 3})
    return summarize(frame, special_tokens=["[CLS]", "[SEP]"], min_count=1)


def test_recall_and_noise_by_hand():
    summary = _summary()
    # the truth ranks the words in the opposite order, except w11 and w10 on top
    effects = {f"w{i}": 0.5 - 0.01 * i for i in range(12)}
    effects.update(w11=0.9, w10=0.8, w0=0.01)
    truth = pd.DataFrame({"class": "A", "item": list(effects), "effect": list(effects.values()), "effect_se": 0.01})
    (row,) = ranking_metrics(summary, truth, "mean", min_count=1, ks=(10, 12))
    # statistic's top 10: w11..w2; truth's top 10: w11, w10, w1..w8 -> shared w11, w10, w2..w8 = 9
    assert row["recall@10"] == 0.9 and row["recall@12"] == 1.0
    assert row["noise@10"] == 0.0 and row["precision@10"] == 1.0
    truth.loc[truth["item"] == "w11", "effect"] = 0.0  # now below the noise level, and its interval holds 0
    (row,) = ranking_metrics(summary, truth, "mean", min_count=1, ks=(10,))
    assert row["noise@10"] == 0.1 and row["precision@10"] == 0.9


def test_verified_top_orders_candidates_by_the_lower_end():
    summary = _summary()
    truth = pd.DataFrame(
        {"class": "A", "item": ["w11", "w10", "w9"], "effect": [0.1, 0.3, 0.2], "effect_se": [0.01, 0.2, 0.01]}
    )
    shown = verified_top(summary, truth, "mean", k=3, min_count=1, n=3)
    # lower ends: w11 0.08, w10 0.3-0.39 < 0, w9 0.18
    assert shown["item"].tolist() == ["w9", "w11", "w10"]
