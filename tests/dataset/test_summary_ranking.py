"""summarize(): the unit (sum or mean of a word's repeats), contraction merging and the contrast
statistics, against a longhand computation written here."""

import math
import statistics as st

import pandas as pd
import pytest
import torch

from captum_normxlogit.dataset import summarize
from captum_normxlogit.dataset.ablation import ablation_effects
from captum_normxlogit.dataset.summary import BACKGROUND_PRIOR, item_positions

SPECIAL = ["[CLS]", "[SEP]"]
Z95 = 1.6448536269514722
CLITICS = {"t", "s", "re", "ve", "ll", "d", "m"}


def _frame():
    rows = [  # (tokens, scores, class)
        (
            ["[CLS]", "it", "doesn", "'", "t", "work", '"', "film", '"', "[SEP]"],
            [0.1, 0.4, 2.0, 0.5, 0.7, -1.0, 0.3, 1.2, 0.2, 0.0],
            "NEG",
        ),
        (["[CLS]", "bad", '"', "film", '"', "'", "s", "[SEP]"], [0.0, 3.0, 0.6, 0.1, 0.4, 0.2, 0.1, 0.0], "NEG"),
        (
            ["[CLS]", "good", "film", "doesn", "'", "t", "fail", "[SEP]"],
            [0.2, 2.5, 0.3, -0.5, 0.1, 0.2, 1.0, 0.0],
            "POS",
        ),
        (["[CLS]", "good", '"', "fun", '"', "film", "[SEP]"], [0.0, 1.5, 0.9, 2.0, 0.1, -0.3, 0.0], "POS"),
        (["[CLS]", "film", "it", "'", "s", "good", "[SEP]"], [0.0, 0.5, 0.2, 0.1, 0.3, 1.8, 0.0], "POS"),
    ]
    return pd.DataFrame(
        {
            "input_ids": [list(range(10, 10 + len(t))) for t, _, _ in rows],
            "tokens": [t for t, _, _ in rows],
            "scores": [s for _, s, _ in rows],
            "target_label": [c for _, _, c in rows],
        }
    )


def _units(tokens, scores, contractions):
    units = [[t, [s]] for t, s in zip(tokens, scores)]  # no ## pieces in this frame: a token is a word
    if not contractions:
        return units
    out, i = [], 0
    while i < len(units):
        if (
            i + 2 < len(units)
            and units[i + 1][0] == "'"
            and units[i + 2][0] in CLITICS
            and units[i][0].isalnum()
            and units[i][0] not in SPECIAL
        ):
            out.append([units[i][0] + "'" + units[i + 2][0], units[i][1] + units[i + 1][1] + units[i + 2][1]])
            i += 3
        else:
            out.append(units[i])
            i += 1
    return out


def _longhand(frame, unit, contractions):
    z_of: dict[tuple[str, str], list[float]] = {}
    for tokens, scores, cls in zip(frame.tokens, frame.scores, frame.target_label):
        per: dict[str, list[float]] = {}
        for word, ss in _units(tokens, scores, contractions):
            per.setdefault(word, []).append(sum(ss))
        value = {w: (sum(v) if unit == "sum" else sum(v) / len(v)) for w, v in per.items()}
        regular = [v for w, v in value.items() if w not in SPECIAL]
        mu, sd = st.fmean(regular), st.pstdev(regular)
        for w, v in value.items():
            z_of.setdefault((cls, w), []).append((v - mu) / sd)
    out = {}
    for (cls, w), z in z_of.items():
        other = [x for (c, w2), zs in z_of.items() if w2 == w and c != cls for x in zs]
        background = sum(other) / (len(other) + BACKGROUND_PRIOR)
        var_other = st.variance(other) if len(other) > 1 else 0.0
        contrast = st.fmean(z) - background
        if len(z) > 1:
            se = math.sqrt(st.variance(z) / len(z) + var_other * len(other) / (len(other) + BACKGROUND_PRIOR) ** 2)
            lcb = contrast - Z95 * se
        else:
            lcb = math.nan
        out[(cls, w)] = {"mean_z": st.fmean(z), "contrast_z": contrast, "lcb_contrast_z": lcb, "count": len(z)}
    return out


@pytest.mark.parametrize("unit", ["sum", "mean"])
@pytest.mark.parametrize("contractions", [False, True])
def test_unit_contractions_and_contrast_match_longhand(unit, contractions):
    summary = summarize(_frame(), special_tokens=SPECIAL, min_count=1, unit=unit, contractions=contractions)
    table = summary.table[summary.table.level == "word"]
    expected = _longhand(_frame(), unit, contractions)
    assert set(zip(table["class"], table["item"])) == set(expected)
    for row in table.itertuples(index=False):
        want = expected[(row[0], row.item)]
        assert row.count == want["count"]
        for name in ("mean_z", "contrast_z", "lcb_contrast_z"):
            got = getattr(row, name)
            assert (math.isnan(got) and math.isnan(want[name])) or got == pytest.approx(want[name], abs=1e-9), name


def test_contractions_are_one_word_and_ablation_masks_all_of_it():
    frame = _frame()
    merged = summarize(frame, special_tokens=SPECIAL, min_count=1, contractions=True)
    items = set(merged.table.loc[merged.table.level == "word", "item"])
    assert {"doesn't", "it's"} <= items and "doesn" not in items
    assert item_positions(frame.tokens[0], "word", "wordpiece", SPECIAL, contractions=True)["doesn't"] == [2, 3, 4]
    assert "doesn" in item_positions(frame.tokens[0], "word", "wordpiece", SPECIAL, contractions=False)
    # "film" "\"" "'" "s": a quote before the apostrophe is not a word, so nothing merges there
    assert "\"'s" not in items and "'" in items

    seen = []

    class Model(torch.nn.Module):  # records the ids it is given; P(class 0) falls with every masked position
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, attention_mask):
            seen.extend(input_ids.tolist())
            masked = (input_ids == 0).sum(-1).float()
            return type("Out", (), {"logits": torch.stack([-masked, masked], -1)})()

    effects = ablation_effects(
        Model(), merged, {"NEG": ["doesn't"]}, class_ids={"NEG": 0, "POS": 1}, replacement_id=0, pad_token_id=99
    )
    assert [10, 11, 0, 0, 0, 15, 16, 17, 18, 19] in seen  # all three positions of doesn ' t at once
    assert effects.loc[0, "n_examples"] == 1


def test_unit_is_checked():
    with pytest.raises(ValueError, match="unit must be one of"):
        summarize(_frame(), special_tokens=SPECIAL, unit="max")
