"""Comprehensiveness, sufficiency and AOPC, proven on hand-computed toy cases.

The toy model is a bag of words with two classes: logit 0 is always 0 and
logit 1 is the sum of a log-odds weight per real token, so
p(class 1) = odds / (1 + odds) with odds the product of the tokens' odds.
Every expected number below is worked out by hand in the comments.
"""

import math

import pytest
import torch

from captum_normxlogit import NormXLogit
from captum_normxlogit.metrics import (
    ERASER_RATIOS,
    PAPER_RATIOS,
    aopc,
    comprehensiveness,
    faithfulness_curves,
    perturb_tokens,
    removal_masks,
    sufficiency,
    token_scores,
)
from tests._support.tiny import batch, bert_classifier

PAD, CLS, MASK, A, B, C, D, SEP = 0, 1, 2, 3, 4, 5, 6, 7
# odds of class 1 contributed by each token; [MASK] and pads contribute nothing (odds 1)
ODDS = {PAD: 1.0, CLS: 2.0, MASK: 1.0, A: 3.0, B: 2.0, C: 1.0, D: 1 / 3, SEP: 1.0}
LOG_ODDS = torch.tensor([math.log(ODDS[i]) for i in range(8)], dtype=torch.float64)


class BagOfWords:
    """forward(ids, mask) -> (B, 2) logits; counts its calls and the rows it saw."""

    def __init__(self):
        self.calls, self.rows = 0, 0

    def __call__(self, ids, mask):
        self.calls += 1
        self.rows += ids.shape[0]
        s = (LOG_ODDS[ids] * mask).sum(-1)
        return torch.stack([torch.zeros_like(s), s], -1)


def p1(odds):
    return odds / (1 + odds)


# Example 0: [CLS] a b c d, odds 2*3*2*1*(1/3) = 4 -> p = 0.8, predicted class 1.
# Scores rank a > b > c > d; [CLS] scores highest but is protected.
IDS = torch.tensor([[CLS, A, B, C, D]])
MASK1 = torch.ones_like(IDS)
GOOD = torch.tensor([[100.0, 4.0, 3.0, 2.0, 1.0]])
# len = 5 (counts [CLS], as the authors' code); int(5 K) for K = 0, .1, ..., 1 (capped at the 4 removable):
COUNTS = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 4]
# comprehensiveness: removing a -> odds 2*2*1/3 = 4/3 (p 4/7); a,b -> 2/3 (p .4); a,b,c -> 2/3; all four -> 2 (p 2/3)
COMP_P = [0.8, 0.8, 4 / 7, 4 / 7, 0.4, 0.4, 0.4, 0.4, 2 / 3, 2 / 3, 2 / 3]
# sufficiency keeps the top n: none -> odds 2 (p 2/3); a -> 6 (6/7); a,b -> 12 (12/13); a,b,c -> 12; all -> 4 (.8)
SUFF_P = [2 / 3, 2 / 3, 6 / 7, 6 / 7, 12 / 13, 12 / 13, 12 / 13, 12 / 13, 0.8, 0.8, 0.8]


def _curves(attr, **kw):
    kw.setdefault("special_token_ids", (CLS,))
    kw.setdefault("removal", MASK)
    labels = torch.tensor([1])
    return faithfulness_curves(BagOfWords(), IDS, {"m": attr}, attention_mask=MASK1, labels=labels, **kw)["m"]


def test_comprehensiveness_curve_by_hand():
    curve = _curves(GOOD)["comprehensiveness"]
    assert curve.ratios == PAPER_RATIOS
    assert curve.removed[0].tolist() == COUNTS
    torch.testing.assert_close(curve.mean_drop(), torch.tensor([0.8 - p for p in COMP_P], dtype=torch.float64))
    # drops at K = 10..90 %: 0, 8/35, 8/35, .4, .4, .4, .4, 2/15, 2/15 -> sum 244/105, mean 244/945
    assert curve.aopc() == pytest.approx(244 / 945)
    # gold label 1; prediction is class 1 while p > 1/2
    assert curve.accuracy().tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1]
    assert curve.aopc("accuracy") == pytest.approx(5 / 9)


def test_sufficiency_curve_by_hand():
    curve = _curves(GOOD)["sufficiency"]
    assert curve.removed[0].tolist() == [4 - n for n in COUNTS]
    torch.testing.assert_close(curve.mean_drop(), torch.tensor([0.8 - p for p in SUFF_P], dtype=torch.float64))
    # drops at 10..90 %: 2/15, -2/35, -2/35, -8/65 (x4), 0 -> mean
    expected = (2 / 15 - 4 / 35 - 32 / 65) / 9
    assert curve.aopc() == pytest.approx(expected)
    assert curve.accuracy().tolist() == [1] * 11
    alone = sufficiency(BagOfWords(), IDS, GOOD, attention_mask=MASK1, special_token_ids=(CLS,), removal=MASK)
    torch.testing.assert_close(alone.drop, curve.drop)
    assert alone.correct is None


def test_sufficiency_direction_rewards_the_right_ranking():
    """Lower sufficiency is better: the true ranking must score below the reversed one."""
    good = _curves(GOOD)["sufficiency"].aopc()
    # reversed ranking d > c > b > a: keep d -> odds 2/3 (p .4); d,c -> 2/3; d,c,b -> 4/3 (4/7); all -> 4 (.8)
    reverse = _curves(torch.tensor([[100.0, 1.0, 2.0, 3.0, 4.0]]))["sufficiency"]
    keep_p = [2 / 3, 2 / 3, 0.4, 0.4, 0.4, 0.4, 4 / 7, 4 / 7, 0.8, 0.8, 0.8]
    torch.testing.assert_close(reverse.mean_drop(), torch.tensor([0.8 - p for p in keep_p], dtype=torch.float64))
    assert reverse.aopc() == pytest.approx((2 / 15 + 4 * 0.4 + 2 * (0.8 - 4 / 7)) / 9)
    assert good < reverse.aopc()
    # and comprehensiveness, higher is better, orders them the other way
    assert (
        _curves(GOOD)["comprehensiveness"].aopc()
        > _curves(torch.tensor([[100.0, 1.0, 2.0, 3.0, 4.0]]))["comprehensiveness"].aopc()
    )


def test_eraser_bins_and_their_aopc():
    curve = _curves(GOOD, ratios=ERASER_RATIOS)["comprehensiveness"]
    # int(5 * .01) = int(5 * .05) = int(5 * .1) = 0, int(5 * .2) = 1, int(5 * .5) = 2
    assert curve.removed[0].tolist() == [0, 0, 0, 1, 2]
    assert curve.aopc() == pytest.approx((0 + 0 + 0 + 8 / 35 + 0.4) / 5)


def test_deleting_equals_masking_for_a_bag_of_words():
    masked = _curves(GOOD)
    deleted = _curves(GOOD, removal="delete", pad_token_id=PAD)
    for kind in ("comprehensiveness", "sufficiency"):
        torch.testing.assert_close(deleted[kind].drop, masked[kind].drop)


def test_pads_never_count_and_batches_are_independent():
    # Example 1 = [CLS] b d + 2 pads: len 3, odds 2*2/3 = 4/3, p = 4/7. Scores rank d > b; pads score highest.
    ids = torch.tensor([[CLS, A, B, C, D], [CLS, B, D, PAD, PAD]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    attr = torch.tensor([[100.0, 4.0, 3.0, 2.0, 1.0], [0.0, 1.0, 2.0, 9.0, 9.0]])
    curves = faithfulness_curves(
        BagOfWords(), ids, {"m": attr}, attention_mask=mask, special_token_ids=(CLS,), removal=MASK
    )["m"]["comprehensiveness"]
    # int(3 K): 0,0,0,0,1,1,1,2,2,2,3 -> capped at the 2 removable tokens
    assert curves.removed[1].tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    # removing d -> odds 4 (p .8): the drop is negative; removing d and b -> odds 2 (p 2/3)
    row = [0.0] * 4 + [4 / 7 - 0.8] * 3 + [4 / 7 - 2 / 3] * 4
    torch.testing.assert_close(curves.drop[1], torch.tensor(row, dtype=torch.float64))
    torch.testing.assert_close(curves.drop[0], torch.tensor([0.8 - p for p in COMP_P], dtype=torch.float64))
    torch.testing.assert_close(curves.mean_drop(), curves.drop.mean(0))


def test_every_distinct_perturbation_runs_once():
    model = BagOfWords()
    faithfulness_curves(
        model,
        IDS,
        {"good": GOOD, "same": GOOD.clone()},
        attention_mask=MASK1,
        special_token_ids=(CLS,),
        removal=MASK,
        batch_size=100,
    )
    # the unperturbed input, then comprehensiveness {a}, {a,b}, {a,b,c}, {a,b,c,d} and
    # sufficiency {b,c,d}, {c,d}, {d}: {a,b,c,d} is shared, the second method adds nothing
    assert model.calls == 2 and model.rows == 1 + 7


def test_removal_masks_rules():
    ids = torch.tensor([[CLS, A, B, C, SEP, PAD], [CLS, A, B, C, D, SEP]])
    mask = (ids != PAD).long()
    scores = torch.tensor([[9.0, 1.0, 1.0, 0.5, 2.0, 7.0], [9.0, 5.0, 4.0, 3.0, 2.0, 1.0]], dtype=torch.float64)
    protected = ids == CLS
    comp = removal_masks(scores, mask, [0.4], "comprehensiveness", protected)[0]
    # row 0: len 5 -> int(2.0) = 2: [SEP] (score 2) then the tie a = b goes to the earlier position (a);
    # [CLS] is protected, the pad is never ranked
    assert comp[0].tolist() == [False, True, False, False, True, False]
    # row 1: len 6 -> int(2.4) = 2: a and b
    assert comp[1].tolist() == [False, True, True, False, False, False]
    suff = removal_masks(scores, mask, [0.4], "sufficiency", protected)[0]
    assert suff[0].tolist() == [False, False, True, True, False, False]
    assert suff[1].tolist() == [False, False, False, True, True, True]
    # counting only removable tokens: row 1 has 5 -> int(2.0) = 2 as well; row 0 has 4 -> int(1.6) = 1
    comp_rem = removal_masks(scores, mask, [0.4], "comprehensiveness", protected, length="removable")[0]
    assert comp_rem.sum(-1).tolist() == [1, 2]
    # nothing protected: [CLS] is ranked like any token
    assert removal_masks(scores, mask, [0.2], "comprehensiveness")[0][1].tolist() == [True] + [False] * 5


def test_gradient_shaped_attributions_need_an_explicit_reduction():
    hidden = torch.tensor([[[0.0, 0.0], [3.0, -3.0], [2.0, 1.0], [-4.0, 0.0], [0.5, 0.0]]])
    with pytest.raises(ValueError, match="reduction="):
        token_scores(hidden)
    with pytest.raises(ValueError, match="only to \\(B, T, H\\)"):
        token_scores(GOOD, "l1")
    assert token_scores(hidden, "sum")[0].tolist() == [0, 0, 3, -4, 0.5]
    assert token_scores(hidden, "l1")[0].tolist() == [0, 6, 3, 4, 0.5]
    torch.testing.assert_close(
        token_scores(hidden, "l2")[0], torch.tensor([0, 18**0.5, 5**0.5, 4, 0.5], dtype=torch.float64)
    )
    # l1 ranks a (6) > c (4) > b (3) > d: at K = 40 % a and c go -> odds 2*2*(1/3) = 4/3 ... with c's odds 1
    curve = comprehensiveness(
        BagOfWords(),
        IDS,
        (hidden,),
        attention_mask=MASK1,
        special_token_ids=(CLS,),
        removal=MASK,
        reduction="l1",
        ratios=[0.4],
    )
    assert curve.drop[0, 0].item() == pytest.approx(0.8 - p1(2 * 2 * (1 / 3)))


def test_perturb_tokens_replaces_or_deletes_on_either_padding_side():
    ids = torch.tensor([[CLS, A, B, C, PAD], [PAD, CLS, A, B, C]])
    mask = (ids != PAD).long()
    types = torch.tensor([[0, 0, 1, 1, 0], [0, 0, 0, 1, 1]])
    remove = torch.tensor([[0, 1, 0, 0, 1], [0, 0, 0, 1, 0]], dtype=torch.bool)  # the pad in row 0 is ignored
    new, m, t = perturb_tokens(ids, mask, remove, MASK, types)
    assert new.tolist() == [[CLS, MASK, B, C, PAD], [PAD, CLS, A, MASK, C]]
    assert m is not None and t is not None
    assert torch.equal(m, mask) and torch.equal(t, types)
    new, m, t = perturb_tokens(ids, mask, remove, "delete", types)
    assert m is not None and t is not None
    assert new.tolist() == [[CLS, B, C, PAD, PAD], [PAD, PAD, CLS, A, C]]
    assert m.tolist() == [[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]]
    assert t.tolist() == [[0, 1, 1, 0, 0], [0, 0, 0, 0, 1]]
    assert ids.tolist() == [[CLS, A, B, C, PAD], [PAD, CLS, A, B, C]]  # inputs untouched


def test_aopc_is_the_mean_over_ten_to_ninety_percent():
    curve = torch.arange(11, dtype=torch.float64)  # value k at K = k/10
    assert aopc(curve, PAPER_RATIOS) == pytest.approx(5.0)  # mean of 1..9
    assert aopc(curve, PAPER_RATIOS, over=[0.0, 1.0]) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="Cannot average"):
        aopc(curve, PAPER_RATIOS, over=[0.25])


def test_matches_a_plain_loop_on_a_real_transformer():
    """An independent re-implementation: mask by hand, one example and one ratio at a time."""
    model = bert_classifier(num_labels=2)
    ids, mask = batch(lengths=(9, 5, 7), seed=3)
    ids[:, 0] = CLS
    nx = NormXLogit(model)
    scores = nx.attribute(ids, additional_forward_args=(mask,))
    curves = faithfulness_curves(
        nx.forward_func, ids, {"nx": scores}, attention_mask=mask, special_token_ids=(CLS,), removal=MASK, batch_size=5
    )["nx"]
    with torch.no_grad():
        for b in range(ids.shape[0]):
            n = int(mask[b].sum())
            row, s = ids[b, :n], scores[b, 1:n].tolist()
            ranked = sorted(range(1, n), key=lambda i: -s[i - 1])
            p0 = model(row[None]).logits.softmax(-1)[0]
            y = int(p0.argmax())
            for k, ratio in enumerate(PAPER_RATIOS):
                top = ranked[: int(n * ratio)]
                for kind, gone in (("comprehensiveness", top), ("sufficiency", ranked[len(top) :])):
                    x = row.clone()
                    x[gone] = MASK
                    p = model(x[None]).logits.softmax(-1)[0, y]
                    assert curves[kind].drop[b, k].item() == pytest.approx(float(p0[y] - p), abs=1e-6)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="removal must be"):
        _curves(GOOD, removal="mask")
    with pytest.raises(ValueError, match="NaN or infinite"):
        _curves(torch.tensor([[0.0, float("nan"), 1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="ratios must"):
        _curves(GOOD, ratios=[0.5, 1.5])
    with pytest.raises(ValueError, match="no tokens at all"):
        _curves(GOOD, special_token_ids=(), removal="delete", pad_token_id=PAD)
    with pytest.raises(ValueError, match="shape"):
        _curves(GOOD[:, :3])
    with pytest.raises(ValueError, match="without labels"):
        comprehensiveness(BagOfWords(), IDS, GOOD, special_token_ids=(CLS,), removal=MASK).accuracy()
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        comprehensiveness(lambda i, m: torch.zeros(i.shape[0]), IDS, GOOD, special_token_ids=(CLS,), removal=MASK)
