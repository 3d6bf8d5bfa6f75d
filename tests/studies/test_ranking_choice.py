"""The summary's defaults are what studies.ranking.choose says on the committed choose-half table."""

import json
from pathlib import Path

import pandas as pd

from captum_normxlogit.dataset import summary as S
from studies.ranking import choose

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "dataset"


def test_defaults_follow_the_committed_choice():
    table = pd.read_csv(RESULTS / "ranking_choose_grid_classes.csv")
    pick = choose(table)
    committed = json.loads((RESULTS / "ranking_choice.json").read_text())
    assert {k: committed[k] for k in pick} == pick
    assert pick["column"] == "scores"  # the default pass stores the last layer only
    assert (S.DEFAULT_STATISTIC, S.DEFAULT_UNIT, S.DEFAULT_CONTRACTIONS, S.DEFAULT_CANDIDATES) == (
        pick["statistic"],
        pick["unit"],
        pick["contractions"],
        pick["k"],
    )


def test_choose_rule_by_hand():
    rows = []
    for stat, r20, rho in (("a", 0.80, 0.1), ("b", 0.82, 0.5), ("c", 0.70, 0.9)):
        for cls in ("N", "P"):
            rows.append(
                {
                    "column": "scores",
                    "unit": "sum",
                    "contractions": False,
                    "statistic": stat,
                    "class": cls,
                    "recall@10": 0.5,
                    "recall@15": 0.8 if stat == "b" else 0.5,
                    "recall@20": r20,
                    "recall@30": 1.0,
                    "recall@40": 1.0,
                    "recall@50": 1.0,
                    "spearman": rho,
                }
            )
    pick = choose(pd.DataFrame(rows))
    # a and b tie at 0.80 after rounding to 0.05; b has the larger Spearman; its recall reaches 0.8 at K=15
    assert pick == {"column": "scores", "unit": "sum", "contractions": False, "statistic": "b", "k": 15}
