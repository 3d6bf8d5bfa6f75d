"""Inputs the faithfulness metrics and compare() used to take silently: each now gets a clear error.

The toy is the bag of words of test_faithfulness.py (hand-computed curves there).
"""

from typing import Any

import pytest
import torch

from captum_normxlogit import NormXLogit, compare
from captum_normxlogit.metrics import comprehensiveness, faithfulness_curves
from tests._support.tiny import VOCAB, batch, bert_classifier
from tests.metrics.test_faithfulness import CLS, GOOD, IDS, MASK, MASK1, BagOfWords


def _probabilities(ids, mask):
    return BagOfWords()(ids, mask).softmax(-1)


def _curves(forward, **kw):
    kw.setdefault("special_token_ids", (CLS,))
    kw.setdefault("removal", MASK)
    return faithfulness_curves(forward, IDS, {"m": GOOD}, attention_mask=MASK1, **kw)["m"]


def test_a_forward_func_returning_probabilities_is_refused():
    # A second softmax would flatten p = 0.8 to softmax([0.2, 0.8]) = 0.65 and shrink every drop.
    with pytest.raises(ValueError, match="probabilities.*forward_output='probabilities'"):
        _curves(_probabilities)


def test_probabilities_are_used_as_they_are_when_declared():
    expected = _curves(BagOfWords())
    declared = _curves(_probabilities, forward_output="probabilities")
    for kind in ("comprehensiveness", "sufficiency"):
        torch.testing.assert_close(declared[kind].drop, expected[kind].drop)
    # log-probabilities are logits up to a constant: softmax gives the probabilities back, no flag needed
    logs = _curves(lambda i, m: _probabilities(i, m).log())
    torch.testing.assert_close(logs["comprehensiveness"].drop, expected["comprehensiveness"].drop)
    with pytest.raises(ValueError, match="forward_output must be one of"):
        _curves(BagOfWords(), forward_output="probs")
    with pytest.raises(ValueError, match="not probabilities"):
        _curves(BagOfWords(), forward_output="probabilities")  # logits declared as probabilities


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(target=torch.tensor([0.7])), "target must hold integer class indices"),
        (dict(target=torch.tensor([2])), r"target must hold one class in 0\.\.1"),
        (dict(labels=torch.tensor([1.0])), "labels must hold integer class indices"),
        (dict(labels=torch.tensor([2])), r"labels must hold classes in 0\.\.1"),
        (dict(labels=torch.tensor([-1])), r"labels must hold classes in 0\.\.1"),
        (dict(special_token_ids=None), r"special_token_ids must be a sequence of token ids.*\(\)"),
        (dict(special_token_ids=(CLS, None)), "special_token_ids must be a sequence of token ids"),
        (dict(removal=-1), "removal id -1 is negative"),
    ],
)
def test_bad_targets_labels_and_ids_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _curves(BagOfWords(), **kwargs)


@pytest.fixture(scope="module")
def bert():
    return bert_classifier(num_labels=2)


def test_an_out_of_vocabulary_removal_id_is_refused_before_any_forward(bert):
    nx = NormXLogit(bert)
    ids, mask = batch(lengths=(5, 3), seed=1)
    scores = nx.attribute(ids, additional_forward_args=(mask,))
    with pytest.raises(ValueError, match=rf"removal id {VOCAB} is not in the model's vocabulary \(0\.\.{VOCAB - 1}\)"):
        comprehensiveness(nx.forward_func, ids, scores, attention_mask=mask, special_token_ids=(), removal=VOCAB)

    # A plain function hides the model: the IndexError of its embedding is turned into the same sentence.
    def plain(i, m):
        return bert(input_ids=i, attention_mask=m).logits

    with pytest.raises(ValueError, match=f"removal id {VOCAB + 5}.*vocabulary"):
        comprehensiveness(plain, ids, scores, attention_mask=mask, special_token_ids=(), removal=VOCAB + 5)


def test_compare_refuses_empty_methods_missing_special_ids_and_unknown_removal_ids(bert):
    ids, mask = batch(lengths=(5, 3), seed=1)
    nx = NormXLogit(bert)
    kw: dict[str, Any] = dict(special_token_ids=(), removal=MASK, methods=["random"], progress=False)
    with pytest.raises(ValueError, match="methods is empty"):
        compare(nx, ids, mask, **{**kw, "methods": []})
    with pytest.raises(ValueError, match="special_token_ids must be a sequence of token ids"):
        compare(nx, ids, mask, **{**kw, "special_token_ids": None})
    with pytest.raises(ValueError, match="not in the model's vocabulary"):
        compare(nx, ids, mask, **{**kw, "removal": VOCAB})
    with pytest.raises(ValueError, match="target must hold integer class indices"):
        compare(nx, ids, mask, **kw, target=torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"labels must hold classes in 0\.\.1"):
        compare(nx, ids, mask, **kw, labels=torch.tensor([0, 7]))
