"""Plausibility metrics against hand-computed toy cases and a brute-force re-implementation."""

import math
import random

import pytest
import torch

from captum_normxlogit.metrics import auprc, average_precision, dot_product, token_f1


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


# ----------------------------------------------------------------------------- average precision
def test_ap_one_evidence_token_ranked_third():
    # ranking: pos1 (.9), pos3 (.5), pos2 (.3, evidence), pos0 -> precision 1/3 at full recall
    assert average_precision(t([0.1, 0.9, 0.3, 0.5]), [[2]]).tolist() == pytest.approx([1 / 3])


def test_ap_two_evidence_tokens():
    # ranking: 0 (E), 2, 3 (E), 1, 4 -> P = 1 at R = .5, P = 2/3 at R = 1: .5 * 1 + .5 * 2/3
    assert average_precision(t([4, 1, 3, 2, 0]), [[0, 3]]).tolist() == pytest.approx([5 / 6])


def test_ap_perfect_and_worst_rankings_and_batch():
    ap = average_precision(t([3, 2, 1], [1, 2, 3]), [[0], [0]])
    assert ap.tolist() == pytest.approx([1.0, 1 / 3])
    assert ap.dtype == torch.float64 and ap.shape == (2,)


def test_ap_ties_enter_together_whatever_the_order():
    # both tokens tie: one threshold holding 2 tokens and 1 evidence -> .5, for either evidence position
    assert average_precision(t([1, 1, 0], [1, 1, 0]), [[0], [1]]).tolist() == pytest.approx([0.5, 0.5])


def test_ap_negative_scores_rank_last():
    # signed ranking: -5 is the least important token, not the most
    assert average_precision(t([-5.0, 1.0, 0.5]), [[0]]).tolist() == pytest.approx([1 / 3])


def test_ap_pads_and_excluded_positions_never_count():
    scores = t([0.2, 0.5, 9.0, 8.0])  # position 2: excluded target, position 3: pad
    mask = torch.tensor([[1, 1, 1, 0]])
    assert average_precision(scores, [[1]], attention_mask=mask, exclude=[[2]]).tolist() == pytest.approx([1.0])
    # counted, the two high scores push the evidence to rank 3
    assert average_precision(scores, [[1]]).tolist() == pytest.approx([1 / 3])


def test_evidence_as_mask_equals_evidence_as_positions():
    scores = t([4, 1, 3, 2, 0], [0, 1, 2, 3, 4])
    mask = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 0, 0, 0]], dtype=torch.bool)
    torch.testing.assert_close(average_precision(scores, mask), average_precision(scores, [[0, 3], [1]]))
    torch.testing.assert_close(average_precision(scores, mask.long()), average_precision(scores, [[0, 3], [1]]))


def _brute_ap(scores, evidence):
    """Mean over evidence tokens of the precision among all tokens scoring at least as high."""
    precisions = []
    for e in evidence:
        taken = [i for i, s in enumerate(scores) if s >= scores[e]]
        precisions.append(sum(i in evidence for i in taken) / len(taken))
    return sum(precisions) / len(precisions)


def test_ap_matches_a_brute_force_definition_with_ties():
    rng = random.Random(0)
    for _ in range(50):
        n = rng.randint(2, 9)
        scores = [float(rng.randint(-3, 3)) for _ in range(n)]  # small ints: many ties
        evidence = sorted(rng.sample(range(n), rng.randint(1, n)))
        got = average_precision(torch.tensor([scores]), [evidence]).item()
        assert got == pytest.approx(_brute_ap(scores, evidence)), (scores, evidence)


# ----------------------------------------------------------------------------- AUPRC
def test_auprc_hand_computed():
    # points (0,1) (0,0) (0,0) (1,1/3) (1,1/4): one trapezoid from R=0,P=0 to R=1,P=1/3
    assert auprc(t([0.1, 0.9, 0.3, 0.5]), [[2]]).tolist() == pytest.approx([1 / 6])
    # points (0,1) (.5,1) (.5,.5) (1,2/3) (1,.5) (1,.4): .5 * 1 + .5 * (.5 + 2/3) / 2
    assert auprc(t([4, 1, 3, 2, 0]), [[0, 3]]).tolist() == pytest.approx([19 / 24])
    assert auprc(t([3, 2, 1]), [[0, 1]]).tolist() == pytest.approx([1.0])


# ----------------------------------------------------------------------------- dot product
def test_dot_product_softmax_sum_and_raw():
    # softmax of (0, ln 3, 0) = (1/5, 3/5, 1/5)
    assert dot_product(t([0.0, math.log(3), 0.0]), [[1]]).tolist() == pytest.approx([0.6])
    assert dot_product(t([1, 2, 1, 4]), [[1, 3]], normalize="sum").tolist() == pytest.approx([0.75])
    assert dot_product(t([1, -2, 1, 4]), [[1, 3]], normalize="none").tolist() == pytest.approx([2.0])


def test_dot_product_uniform_scores_give_the_evidence_share():
    assert dot_product(torch.ones(1, 5), [[0, 2]], normalize="sum").tolist() == pytest.approx([0.4])


def test_dot_product_drops_pads_and_excluded_before_normalising():
    scores = t([1, 2, 5, 100])
    mask = torch.tensor([[1, 1, 1, 0]])
    assert dot_product(scores, [[1]], normalize="sum", attention_mask=mask, exclude=[[2]]).tolist() == pytest.approx(
        [2 / 3]
    )
    # softmax over (1, 2) only
    expected = math.exp(2) / (math.exp(1) + math.exp(2))
    assert dot_product(scores, [[1]], attention_mask=mask, exclude=[[2]]).tolist() == pytest.approx([expected])


# ----------------------------------------------------------------------------- token F1
def test_token_f1_top_k_and_threshold():
    scores = t([5, 4, 3, 2])
    assert token_f1(scores, [[1, 2]]).tolist() == pytest.approx([0.5])  # top-2 = {0, 1}
    assert token_f1(scores, [[1, 2]], k=3).tolist() == pytest.approx([0.8])  # {0,1,2}: 2*2/(3+2)
    assert token_f1(scores, [[1, 2]], threshold=3.5).tolist() == pytest.approx([0.5])
    assert token_f1(scores, [[1, 2]], threshold=10.0).tolist() == pytest.approx([0.0])
    assert token_f1(scores, [[0]]).tolist() == pytest.approx([1.0])


def test_token_f1_ignores_pads():
    scores = t([1, 2, 9])
    assert token_f1(scores, [[1]], attention_mask=torch.tensor([[1, 1, 0]])).tolist() == pytest.approx([1.0])


# ----------------------------------------------------------------------------- shapes and reductions
def test_hidden_attributions_need_a_reduction():
    attr = torch.tensor([[[1.0, -2.0], [0.5, 0.5], [-3.0, 0.0]]])
    # sum -> (-1, 1, -3): evidence first; l1 -> (3, 1, 3): last; l2 -> (2.24, .71, 3): last
    assert average_precision(attr, [[1]], reduction="sum").tolist() == pytest.approx([1.0])
    assert average_precision(attr, [[1]], reduction="l1").tolist() == pytest.approx([1 / 3])
    assert average_precision(attr, [[1]], reduction="l2").tolist() == pytest.approx([1 / 3])
    assert dot_product(attr, [[1]], reduction="l1", normalize="sum").tolist() == pytest.approx([1 / 7])
    with pytest.raises(ValueError, match="reduction="):
        average_precision(attr, [[1]])


def test_tuple_input_equals_tensor_input():
    scores = t([4, 1, 3, 2, 0])
    torch.testing.assert_close(auprc((scores,), [[0, 3]]), auprc(scores, [[0, 3]]))


@pytest.mark.parametrize("metric", [average_precision, auprc, dot_product, token_f1])
def test_bad_inputs_raise_clear_errors(metric):
    scores = t([1, 2, 3])
    with pytest.raises(ValueError, match=r"applies only to \(B, T, H\)"):
        metric(scores, [[0]], reduction="l1")
    with pytest.raises(ValueError, match="no evidence"):
        metric(scores, [[]])
    with pytest.raises(ValueError, match="padding or excluded"):
        metric(scores, [[2]], attention_mask=torch.tensor([[1, 1, 0]]))
    with pytest.raises(ValueError, match="padding or excluded"):
        metric(scores, [[1]], exclude=[[1]])
    with pytest.raises(ValueError, match="shape"):
        metric(scores, torch.ones(1, 4))
    with pytest.raises(ValueError, match="positions must be ints"):
        metric(scores, [[3]])
    with pytest.raises(ValueError, match="2 examples"):
        metric(scores, [[0], [1]])
    with pytest.raises(ValueError, match="NaN"):
        metric(t([1, float("nan"), 3]), [[0]])
    with pytest.raises(ValueError, match=r"\(B, T\) or \(B, T, H\)"):
        metric(torch.ones(3), [[0]])


def test_sum_normalisation_refuses_signed_scores():
    with pytest.raises(ValueError, match="non-negative"):
        dot_product(t([1, -2, 3]), [[0]], normalize="sum")
    with pytest.raises(ValueError, match="normalize must be"):
        dot_product(t([1, 2, 3]), [[0]], normalize="max")


def test_token_f1_argument_errors():
    with pytest.raises(ValueError, match="not both"):
        token_f1(t([1, 2]), [[0]], k=1, threshold=0.0)
    with pytest.raises(ValueError, match="positive int"):
        token_f1(t([1, 2]), [[0]], k=0)
