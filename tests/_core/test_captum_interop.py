"""NormXLogit next to Captum's own methods, metrics and visualization, on the same forward_func."""

import pytest
import torch
from captum.attr import (
    InputXGradient,
    IntegratedGradients,
    LayerIntegratedGradients,
    Saliency,
    visualization,
)
from captum.metrics import infidelity, sensitivity_max

from captum_normxlogit import NormXLogit, reduce_hidden
from captum_normxlogit.metrics import token_removal_perturbation
from captum_normxlogit.visualization import to_visualization_records
from tests._support.tiny import MASK, PAD, batch, llama_lm


def test_forward_func_is_the_models_own_output(bert):
    ids, mask = batch()
    nx = NormXLogit(bert)
    with torch.no_grad():
        torch.testing.assert_close(nx.forward_func(ids, mask), bert(ids, attention_mask=mask).logits)


def test_causal_lm_forward_func_reads_the_last_real_token():
    lm = llama_lm()
    ids, mask = batch(left=False)
    nx = NormXLogit(lm)
    with torch.no_grad():
        got = nx.forward_func(ids, mask)
        for b in range(ids.shape[0]):
            n = int(mask[b].sum())
            alone = lm(ids[b : b + 1, :n]).logits[0, -1]
            torch.testing.assert_close(got[b], alone, rtol=1e-5, atol=1e-5)


def test_integrated_gradients_on_the_same_function_is_complete(bert):
    ids, mask = batch()
    nx = NormXLogit(bert)
    embeds = bert.get_input_embeddings()(ids).detach()
    target = nx.forward_func(ids, mask).argmax(-1)
    ig = IntegratedGradients(nx.forward_func)
    attributions, delta = ig.attribute(
        embeds, target=target, additional_forward_args=(mask,), n_steps=64, return_convergence_delta=True
    )
    assert attributions.shape == embeds.shape
    assert delta.abs().max() < 1e-2  # completeness: the function IG saw is a real, smooth model function
    ours = nx.attribute(embeds, target=target, additional_forward_args=(mask,))
    assert reduce_hidden(attributions, "l1").shape == ours.shape


def test_layer_integrated_gradients_and_gradient_methods(bert):
    ids, mask = batch()
    nx = NormXLogit(bert)
    target = nx.forward_func(ids, mask).argmax(-1)
    baseline = torch.where(mask.bool(), torch.full_like(ids, PAD), ids)
    lig = LayerIntegratedGradients(nx.forward_func, bert.bert.embeddings)
    out = lig.attribute(ids, baselines=baseline, target=target, additional_forward_args=(mask,), n_steps=8)
    assert out.shape == (*ids.shape, 32)
    embeds = bert.get_input_embeddings()(ids).detach()
    for method in (Saliency(nx.forward_func), InputXGradient(nx.forward_func)):
        grads = method.attribute(embeds.clone().requires_grad_(), target=target, additional_forward_args=(mask,))
        assert grads.shape == embeds.shape and torch.isfinite(grads).all()
    for reduction in ("sum", "l1", "l2"):
        assert reduce_hidden(out, reduction).shape == ids.shape
    with pytest.raises(ValueError, match="reduction"):
        reduce_hidden(out, "max")


def test_infidelity_scores_normxlogit_and_layer_ig_by_the_same_code(bert):
    ids, mask = batch(lengths=(6, 6, 6))
    nx = NormXLogit(bert)
    target = nx.forward_func(ids, mask).argmax(-1)
    ours = nx.attribute(ids, target=target, additional_forward_args=(mask,))
    lig = LayerIntegratedGradients(nx.forward_func, bert.bert.embeddings)
    theirs = reduce_hidden(lig.attribute(ids, target=target, additional_forward_args=(mask,), n_steps=8), "sum")
    for attributions in (ours, theirs.detach()):
        # Binary token drops to [MASK], as infidelity's docs ask for global methods (the public perturbation).
        drop_tokens = token_removal_perturbation(MASK, protected_ids=(PAD,), seed=0)
        score = infidelity(
            nx.forward_func,
            drop_tokens,
            ids,
            attributions,
            additional_forward_args=(mask,),
            target=target,
            n_perturb_samples=4,
            normalize=True,
        )
        assert score.shape == (3,) and torch.isfinite(score).all()


def test_sensitivity_max_calls_attribute_with_a_tuple(bert):
    ids, mask = batch(lengths=(6, 6, 6))
    nx = NormXLogit(bert)
    embeds = bert.get_input_embeddings()(ids).detach()
    target = nx.forward_func(ids, mask).argmax(-1)
    sens = sensitivity_max(nx.attribute, embeds, target=target, additional_forward_args=(mask,), n_perturb_samples=3)
    assert sens.shape == (3,) and torch.isfinite(sens).all()


def test_visualize_text_renders_normxlogit_records(bert):
    pytest.importorskip("IPython")
    ids, mask = batch()
    nx = NormXLogit(bert)
    scores = nx.attribute(ids, additional_forward_args=(mask,))
    probs = nx.forward_func(ids, mask).softmax(-1).detach()
    tokens = [[f"tok{int(i)}" for i in row] for row in ids]
    predicted = [str(int(p)) for p in probs.argmax(-1)]
    records = to_visualization_records(scores, tokens, probs.max(-1).values, predicted, attention_mask=mask)
    assert len(records) == 3
    for record, n in zip(records, mask.sum(-1).tolist()):
        assert record.word_attributions.abs().max() == pytest.approx(1.0)
        assert len(record.raw_input_ids) == n
    page = visualization.visualize_text(records).data
    for row, n in zip(tokens, mask.sum(-1).tolist()):
        for token in row[:n]:
            assert token in page
