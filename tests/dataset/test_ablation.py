"""Ablation effects against a one-example-at-a-time re-computation; Spearman; candidate choice; agreement."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from captum_normxlogit.dataset import STATISTICS, summarize
from captum_normxlogit.dataset.ablation import ablation_candidates, ablation_effects, rank_agreement, spearman
from tests._support import saved as S

CLASSES = {name: i for i, name in S.LABELS.items()}


@pytest.fixture(scope="module")
def setting():
    tok, model = S.wordpiece(), S.classifier()
    texts = S.SENTENCES
    ids = [tok(t)["input_ids"] for t in texts]
    with torch.no_grad():
        pred = [int(model(input_ids=torch.tensor([r])).logits.argmax(-1)) for r in ids]
    g = torch.Generator().manual_seed(0)
    frame = pd.DataFrame(
        {
            "index": range(len(ids)),
            "input_ids": ids,
            "tokens": [tok.convert_ids_to_tokens(r) for r in ids],
            "scores": [torch.randn(len(r), generator=g).tolist() for r in ids],
            "target": pred,
            "target_label": [S.LABELS[p] for p in pred],
        }
    )
    return tok, model, summarize(frame, special_tokens=tok.all_special_tokens, min_count=1)


def _by_hand(model, tok, frame, cls, word):
    """P(cls) before minus after writing [MASK] over the word's pieces, one unpadded example at a time."""
    drops = []
    for ids, label in zip(frame.input_ids, frame.target_label):
        if label != cls:
            continue
        tokens = tok.convert_ids_to_tokens(ids)
        # words: a token plus the ## pieces after it
        starts = [i for i, t in enumerate(tokens) if not t.startswith("##")]
        spans = [list(range(a, b)) for a, b in zip(starts, starts[1:] + [len(tokens)])]
        hit = [
            p
            for span in spans
            if "".join(tokens[i][2:] if k else tokens[i] for k, i in enumerate(span)) == word
            for p in span
        ]
        if not hit:
            continue
        ablated = list(ids)
        for p in hit:
            ablated[p] = tok.mask_token_id
        with torch.no_grad():
            before = model(input_ids=torch.tensor([ids])).logits.softmax(-1)[0, CLASSES[cls]]
            after = model(input_ids=torch.tensor([ablated])).logits.softmax(-1)[0, CLASSES[cls]]
        drops.append(float(before - after))
    return drops


def test_effects_match_a_one_at_a_time_computation(setting):
    tok, model, summary = setting
    items = {cls: list(summary.top(cls, 4, statistic="mean")["item"]) + ["unbelievably"] for cls in summary.classes}
    effects = ablation_effects(
        model,
        summary,
        items,
        class_ids=CLASSES,
        replacement_id=tok.mask_token_id,
        pad_token_id=tok.pad_token_id,
        max_examples=None,
        batch_size=5,
    )
    assert len(effects) == sum(len(set(v)) for v in items.values())  # listed twice, measured once
    for row in effects.itertuples():
        drops = _by_hand(model, tok, summary.frame, row[1], row.item)
        assert row.n_examples == len(drops)
        if drops:
            assert row.effect == pytest.approx(np.mean(drops), abs=1e-5)
        else:
            assert math.isnan(row.effect)
    assert (effects.n_examples > 0).any() and model.training is False


def test_max_examples_caps_and_is_seeded(setting):
    tok, model, summary = setting
    cls = max(summary.classes, key=summary.classes.get)
    word = summary.top(cls, 1, statistic="mean", min_count=3)["item"].iloc[0]
    kwargs = dict(class_ids=CLASSES, replacement_id=tok.mask_token_id, pad_token_id=tok.pad_token_id, max_examples=2)
    a = ablation_effects(model, summary, {cls: [word]}, **kwargs, seed=1)
    b = ablation_effects(model, summary, {cls: [word]}, **kwargs, seed=1)
    assert a.n_examples.tolist() == [2]
    pd.testing.assert_frame_equal(a, b)


def test_bad_requests_are_refused(setting):
    tok, model, summary = setting
    with pytest.raises(ValueError, match="class_ids lacks"):
        ablation_effects(model, summary, {"POSITIVE": ["film"]}, class_ids={}, replacement_id=4, pad_token_id=0)
    bare = summarize(summary.frame.drop(columns=["input_ids"]), min_count=1)
    with pytest.raises(ValueError, match="input_ids"):
        ablation_effects(model, bare, {}, class_ids=CLASSES, replacement_id=4, pad_token_id=0)


def test_spearman_against_known_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # 1 - 6 * sum(d^2) / (n (n^2 - 1)) without ties: ranks (1,2,3,4,5) vs (2,1,4,3,5): sum d^2 = 4
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(1 - 6 * 4 / (5 * 24))
    assert math.isnan(spearman([1, 2], [1, 2])) and math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert spearman([1, 2, float("nan"), 3], [1, 2, 5, 3]) == pytest.approx(1.0)  # NaN pairs dropped


def test_candidates_hold_every_statistics_top_and_a_seeded_random_rest(setting):
    _, _, summary = setting
    cls = max(summary.classes, key=summary.classes.get)
    chosen = ablation_candidates(summary, cls, n_top=2, n_random=3, seed=0)
    for statistic in STATISTICS:
        assert set(summary.top(cls, 2, statistic=statistic)["item"]) <= set(chosen)
    assert len(chosen) == len(set(chosen))
    assert chosen == ablation_candidates(summary, cls, n_top=2, n_random=3, seed=0)
    assert not set(chosen) & set(summary.special_tokens)


def test_rank_agreement_is_spearman_of_each_statistic(setting):
    _, _, summary = setting
    cls = max(summary.classes, key=summary.classes.get)
    words = list(summary.top(cls, 6, statistic="mean")["item"])
    # a made-up ground truth equal to the mean: mean agrees perfectly, the others are what they are
    means = summary.table.set_index(["class", "level", "item"]).loc[[(cls, "word", w) for w in words], "mean"]
    effects = pd.DataFrame(
        {"class": cls, "item": words, "n_examples": 1, "effect": means.to_numpy(), "effect_se": np.nan, "p_before": 0.5}
    )
    table = rank_agreement(summary, effects, top_k=2).set_index("statistic")
    assert table.loc["mean", "spearman"] == pytest.approx(1.0)
    assert table.loc["mean", "effect_at_k"] == pytest.approx(table.loc["mean", "best_effect_at_k"])
    assert table.loc["mean", "best_effect_at_k"] == pytest.approx(means.nlargest(2).mean())
    assert set(table.index) == set(STATISTICS)
    measured = summary.table.set_index(["class", "level", "item"]).loc[[(cls, "word", w) for w in words]]
    for statistic in STATISTICS:  # items without the statistic (a bound needs 2 examples) are left out
        assert table.loc[statistic, "n_items"] == measured[statistic].notna().sum()
