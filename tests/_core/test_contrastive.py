"""Contrastive scores (``foil=``): target minus foil from one pass, checked against the per-token reference loop.

The expected value is the difference of two independent reference results (tests/_reference.py), one for the
target and one for the foil, so nothing here trusts the implementation's own target reading.
"""

from __future__ import annotations

import pytest
import torch

from captum_normxlogit import NormXLogit
from tests._reference import reference
from tests._support.families import MASK, build, make_batch, n_layers
from tests._support.hooks import hook_count as _hook_count

ATOL = 1e-5
# classifiers (encoder and decoder), causal LMs with soft-capping (gemma2), a biased head (phi),
# project_out (opt), and a masked LM
MODELS = ["bert_cls", "roberta_cls", "gpt2_cls", "llama_lm", "gemma2_lm", "phi_lm", "opt_lm", "bert_mlm"]


def _setup(name: str, left: bool = False):
    model = build(name)
    mlm = name.endswith("_mlm")
    batch = make_batch(left=left, mlm=mlm)
    nx_kwargs = {"mask_token_id": MASK} if mlm else {}
    n_out = model.config.num_labels if name.endswith("_cls") else model.config.vocab_size
    return model, batch, nx_kwargs, n_out


@pytest.mark.parametrize("name", MODELS)
def test_foil_equals_difference_of_references(name):
    model, batch, kw, n_out = _setup(name, left=name in ("llama_lm", "gpt2_cls"))
    target, foil = [1, n_out - 1, 2], [2, 0, n_out - 2]
    ref_t = reference(model, batch.ids, batch.mask, target=target, mask_token_id=MASK)
    ref_f = reference(model, batch.ids, batch.mask, target=foil, mask_token_id=MASK)
    L = n_layers(model)
    nx = NormXLogit(model, **kw)
    got = nx.attribute(batch.ids, target=target, additional_forward_args=(batch.mask,), foil=foil)
    torch.testing.assert_close(got, ref_t.scores[L] - ref_f.scores[L], atol=ATOL, rtol=0)
    every = nx.attribute_all_layers(batch.ids, target=target, additional_forward_args=(batch.mask,), foil=foil)
    for layer in range(L + 1):
        torch.testing.assert_close(every[:, layer], ref_t.scores[layer] - ref_f.scores[layer], atol=ATOL, rtol=0)
    logat = NormXLogit(model, multiply_by_inputs=False, **kw).attribute(
        batch.ids, target=target, additional_forward_args=(batch.mask,), foil=foil
    )
    torch.testing.assert_close(logat, ref_t.logat[L] - ref_f.logat[L], atol=ATOL, rtol=0)


def test_foil_with_predicted_target_and_layer():
    model = build("llama_lm")
    batch = make_batch(left=True)
    ref_pred = reference(model, batch.ids, batch.mask)  # target=None: the model's own next tokens
    ref_foil = reference(model, batch.ids, batch.mask, target=7)
    got = NormXLogit(model, layer=1).attribute(batch.ids, additional_forward_args=(batch.mask,), foil=7)
    torch.testing.assert_close(got, ref_pred.scores[1] - ref_foil.scores[1], atol=ATOL, rtol=0)


def test_foil_forms_and_self_contrast():
    model = build("gpt2_lm")
    batch = make_batch()
    nx = NormXLogit(model)
    extra = (batch.mask,)
    as_int = nx.attribute(batch.ids, target=11, additional_forward_args=extra, foil=5)
    as_list = nx.attribute(batch.ids, target=11, additional_forward_args=extra, foil=[5, 5, 5])
    as_tensor = nx.attribute(batch.ids, target=11, additional_forward_args=extra, foil=torch.tensor(5))
    torch.testing.assert_close(as_int, as_list, atol=0, rtol=0)
    torch.testing.assert_close(as_int, as_tensor, atol=0, rtol=0)
    assert bool((as_int[batch.mask == 0] == 0).all()), "pads must stay exactly 0"
    same = nx.attribute(batch.ids, target=[4, 8, 9], additional_forward_args=extra, foil=[4, 8, 9])
    torch.testing.assert_close(same, torch.zeros_like(same), atol=1e-6, rtol=0)
    # tuple in, tuple out, as without a foil
    tup = nx.attribute((batch.ids,), target=11, additional_forward_args=extra, foil=5)
    assert isinstance(tup, tuple) and torch.equal(tup[0], as_int)


@pytest.mark.parametrize(
    "foil, error, match",
    [
        (99, ValueError, r"foil \[99, 99, 99\].*out of range"),
        ([1, 2], ValueError, r"foil must hold one id per example \(3\)"),
        (1.5, TypeError, r"foil must be None, an int"),
        (True, TypeError, r"foil must be an int"),
    ],
)
def test_bad_foil_raises_before_the_model_runs(foil, error, match):
    model = build("llama_lm")
    batch = make_batch()
    hooks_before = _hook_count(model)  # transformers may keep its own output-capturing hooks
    calls = []
    handle = model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(error, match=match):
            NormXLogit(model).attribute(batch.ids, target=3, additional_forward_args=(batch.mask,), foil=foil)
    finally:
        handle.remove()
    assert not calls, "the model ran although the foil was invalid"
    assert _hook_count(model) == hooks_before, "a hook was left on the model"


def test_regression_head_refuses_a_foil():
    model = build("bert_reg")
    batch = make_batch()
    with pytest.raises(ValueError, match="regression head.*foil=None"):
        NormXLogit(model).attribute(batch.ids, additional_forward_args=(batch.mask,), foil=0)
