r"""How well a summary's ranking finds the words occlusion says matter (:mod:`studies.ranking`).

For one class, ``truth`` is an occlusion table of every word ranked at the minimum count.
``recall@K``: the share of the 10 largest occlusion effects found among the ranking's top K.
``spearman``: rank correlation of the statistic with the effect over every measured word.
``noise@10``: the share of the ranking's top 10 whose effect is below 0.02 (a word that masks
to almost nothing; no stop list: the measured effect decides). ``precision@10``: the share
of the top 10 whose 95 % interval of the effect lies above 0.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np

from captum_normxlogit.dataset.ablation import spearman
from captum_normxlogit.dataset.summary import DatasetSummary

__all__ = ["KS", "NOISE", "ranking_metrics", "verified_top"]

KS = (10, 15, 20, 30, 40, 50)
NOISE = 0.02
_Z = 1.959963984540054


def _lower(truth: Any) -> Any:
    return truth["effect"] - _Z * truth["effect_se"].fillna(np.inf)


def ranking_metrics(
    summary: DatasetSummary, truth: Any, statistic: str, *, min_count: int, ks: Sequence[int] = KS
) -> List[Dict[str, Any]]:
    r"""One row per class: ``recall@K`` for each K, ``spearman``, ``noise@10``, ``precision@10``."""
    rows = []
    for cls in sorted(summary.classes):
        ranked = summary.top(cls, None, statistic=statistic, min_count=min_count)
        mine = truth[truth["class"] == cls].dropna(subset=["effect"])
        if mine.empty:
            continue
        best = set(mine.nlargest(10, "effect")["item"])
        order = ranked["item"].tolist()
        merged = ranked.merge(mine, on=["class", "item"], how="inner")
        top10 = mine.set_index("item").reindex(order[:10])
        row: Dict[str, Any] = {"class": cls, "words": len(mine)}
        for k in ks:
            row[f"recall@{k}"] = len(best & set(order[:k])) / len(best)
        row["spearman"] = spearman(merged[statistic], merged["effect"])
        row["noise@10"] = float((top10["effect"] < NOISE).mean())
        row["precision@10"] = float((_lower(top10.reset_index()) > 0).mean())
        rows.append(row)
    return rows


def verified_top(summary: DatasetSummary, truth: Any, statistic: str, *, k: int, min_count: int, n: int = 10) -> Any:
    r"""What a verified summary shows: the top ``k`` candidates by ``statistic``, ordered by the
    lower end of the effect's 95 % interval, the first ``n`` per class."""
    import pandas as pd

    parts = []
    for cls in sorted(summary.classes):
        cand = summary.top(cls, k, statistic=statistic, min_count=min_count)
        cand = cand.merge(truth, on=["class", "item"], how="left")
        cand["effect_low"] = _lower(cand)
        cand["effect_high"] = cand["effect"] + _Z * cand["effect_se"]
        cand = cand.sort_values(["effect_low", "rank"], ascending=[False, True], kind="mergesort").head(n)
        parts.append(cand.assign(verified_rank=np.arange(1, len(cand) + 1)))
    return pd.concat(parts, ignore_index=True)
