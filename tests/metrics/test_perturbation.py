"""token_removal_perturbation: captum.metrics.infidelity on NormXLogit's (B, T) scores, checked
against the infidelity formula computed here by hand from the same draws."""

import pytest
import torch
from captum.metrics import infidelity

from captum_normxlogit import NormXLogit
from captum_normxlogit.metrics import token_removal_perturbation
from tests._support.tiny import MASK, PAD, batch

CLS = 1


def _ids():
    ids, mask = batch(lengths=(7, 4, 6))
    ids[:, 0] = CLS
    return ids, mask


def test_removes_only_removable_tokens_and_marks_exactly_those():
    ids, _ = _ids()
    ids[0, 3] = MASK  # already the replacement: never counted as removed
    perturb = token_removal_perturbation(MASK, probability=0.5, protected_ids=(PAD, CLS), seed=0)
    seen = torch.zeros_like(ids, dtype=torch.bool)
    for _ in range(30):
        perturbation, perturbed = perturb(ids)
        assert perturbation.dtype == torch.float32 and perturbed.dtype == ids.dtype
        removed = perturbation.bool()
        assert torch.equal(perturbed, torch.where(removed, torch.full_like(ids, MASK), ids))
        assert not removed[(ids == PAD) | (ids == CLS) | (ids == MASK)].any()
        seen |= removed
    removable = (ids != PAD) & (ids != CLS) & (ids != MASK)
    assert torch.equal(seen, removable)  # every removable token is drawn some time in 30 calls at p = 0.5


def test_the_same_seed_gives_the_same_draws_and_leaves_the_global_generator_alone():
    ids, _ = _ids()
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    first = token_removal_perturbation(MASK, seed=7)(ids)[0]
    again = token_removal_perturbation(MASK, seed=7)(ids)[0]
    assert torch.equal(first, again)
    assert torch.equal(torch.rand(3), before)


@pytest.mark.parametrize("normalize", [False, True])
def test_infidelity_takes_normxlogit_scores_and_matches_the_formula_by_hand(bert, normalize):
    ids, mask = _ids()
    nx = NormXLogit(bert)
    target = nx.forward_func(ids, mask).argmax(-1)
    scores = nx.attribute(ids, target=target, additional_forward_args=(mask,))
    assert scores.shape == ids.shape

    calls = []
    inner = token_removal_perturbation(MASK, protected_ids=(PAD, CLS), seed=0)

    def spy(inputs):
        out = inner(inputs)
        calls.append((inputs.clone(), *out))
        return out

    n = 5
    value = infidelity(
        nx.forward_func,
        spy,
        ids,
        scores,
        additional_forward_args=(mask,),
        target=target,
        n_perturb_samples=n,
        normalize=normalize,
    )
    assert value.shape == (3,) and torch.isfinite(value).all()

    # By hand: infidelity = mean over the n draws of (sum_i score_i * I_i - (f(x) - f(x with I removed)))^2,
    # with the attribution term scaled by beta = E[a b] / E[a^2] when normalize=True.
    assert len(calls) == 1
    inputs, perturbation, perturbed = calls[0]
    assert torch.equal(inputs, ids.repeat_interleave(n, 0))
    expected = []
    with torch.no_grad():
        for b in range(ids.shape[0]):
            full = bert(ids[b : b + 1], attention_mask=mask[b : b + 1]).logits[0, target[b]].item()
            a, d = [], []
            for k in range(n):
                row = b * n + k
                a.append(sum(scores[b, t].item() * perturbation[row, t].item() for t in range(ids.shape[1])))
                out = bert(perturbed[row : row + 1], attention_mask=mask[b : b + 1]).logits[0, target[b]].item()
                d.append(full - out)
            beta = 1.0
            if normalize:
                beta = sum(x * y for x, y in zip(a, d)) / sum(x * x for x in a)
            expected.append(sum((beta * x - y) ** 2 for x, y in zip(a, d)) / n)
    torch.testing.assert_close(value.double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: token_removal_perturbation(MASK, probability=1.0), "probability must be in"),
        (lambda: token_removal_perturbation(MASK, probability=0), "probability must be in"),
        (lambda: token_removal_perturbation("[MASK]"), "replacement_id must be a token id"),  # type: ignore[arg-type]
        (lambda: token_removal_perturbation(MASK)(torch.zeros(2, 3)), "integer token ids"),
        (lambda: token_removal_perturbation(MASK)(torch.zeros(2, 3, 4, dtype=torch.long)), "shape"),
    ],
)
def test_bad_arguments_are_refused_with_what_to_pass(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
