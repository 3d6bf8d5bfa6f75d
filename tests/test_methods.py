"""The shared method registry: each method checked against an independent computation."""
import pytest
import torch

from captum_normxlogit import NormXLogit
from captum_normxlogit.methods import (
    METHOD_KEYS,
    CaptumMethod,
    NormXLogitMethod,
    RandomMethod,
    build_method,
    default_methods,
    keep_specials_baseline,
    parse_method_keys,
)
from captum.attr import IntegratedGradients

from tests._tiny import PAD, batch, bert_classifier, llama_lm

CLS, SEP = 1, 2


@pytest.fixture(scope="module")
def bert():
    return bert_classifier()


@pytest.fixture()
def data():
    ids, mask = batch()
    ids[:, 0] = CLS
    for b, n in enumerate(mask.sum(-1).tolist()):
        ids[b, n - 1] = SEP
    return ids, mask, torch.tensor([0, 2, 1])


def _grad_wrt_embeds(model, ids, mask, target):
    """Plain autograd, no Captum: d logit[target] / d inputs_embeds, and the embeds."""
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    logits = model(inputs_embeds=embeds, attention_mask=mask).logits
    logits.gather(1, target[:, None]).sum().backward()
    return embeds.grad, embeds.detach()


def test_normxlogit_variants_match_the_formula(bert, data):
    ids, mask, target = data
    with torch.no_grad():
        out = bert(ids, attention_mask=mask, output_hidden_states=True)
        pooled = bert.bert.pooler.activation(bert.bert.pooler.dense(out.hidden_states[-1]))
        logat = bert.classifier(pooled).gather(2, target[:, None, None].expand(-1, ids.shape[1], 1))[..., 0]
        norm = out.hidden_states[0].norm(dim=-1)
    nx = NormXLogit(bert)
    m = mask.bool()
    for key, expected in (("normxlogit", norm * logat), ("logat", logat), ("norm", norm)):
        got = build_method(key, nx)(ids, mask, target)
        torch.testing.assert_close(got[m], expected[m], rtol=1e-5, atol=1e-5)
        assert (got[~m] == 0).all()


def test_target_ids_map_classes_to_head_rows():
    lm = llama_lm()
    ids, mask = batch(left=True)
    nx = NormXLogit(lm)
    label_words = [11, 42]
    got = NormXLogitMethod(nx, target_ids=label_words)(ids, mask, torch.tensor([1, 0, 1]))
    expected = nx.attribute(ids, target=torch.tensor([42, 11, 42]), additional_forward_args=(mask,))
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="outside"):
        NormXLogitMethod(nx, target_ids=label_words)(ids, mask, torch.tensor([2, 0, 1]))


def test_gradient_methods_match_plain_autograd(bert, data):
    ids, mask, target = data
    grad, embeds = _grad_wrt_embeds(bert, ids, mask, target)
    nx = NormXLogit(bert)
    m = mask.bool()
    saliency = build_method("saliency", nx)(ids, mask, target)
    torch.testing.assert_close(saliency[m], grad.abs().sum(-1)[m], rtol=1e-4, atol=1e-6)
    ixg = build_method("inputxgradient", nx, reduction="sum")(ids, mask, target)
    torch.testing.assert_close(ixg[m], (grad * embeds).sum(-1)[m], rtol=1e-4, atol=1e-6)
    ixg_l2 = build_method("inputxgradient", nx, reduction="l2")(ids, mask, target)
    torch.testing.assert_close(ixg_l2[m], (grad * embeds).norm(dim=-1)[m], rtol=1e-4, atol=1e-6)


def test_integrated_gradients_are_complete(bert, data):
    """Completeness: signed IG scores sum to f(x) - f(baseline); an independent property of IG."""
    ids, mask, target = data
    nx = NormXLogit(bert)
    with torch.no_grad():
        f_x = bert(ids, attention_mask=mask).logits.gather(1, target[:, None])[:, 0]
        zero = torch.zeros(*ids.shape, bert.config.hidden_size)
        f_zero = bert(inputs_embeds=zero, attention_mask=mask).logits.gather(1, target[:, None])[:, 0]
        base_ids = keep_specials_baseline(ids, mask, PAD, (CLS, SEP))
        f_pad = bert(base_ids, attention_mask=mask).logits.gather(1, target[:, None])[:, 0]
    ig = build_method("ig", nx, reduction="sum", ig_steps=300)(ids, mask, target)
    torch.testing.assert_close(ig.sum(-1), f_x - f_zero, rtol=0, atol=2e-3)
    lig = build_method("layer_ig", nx, reduction="sum", ig_steps=300, pad_token_id=PAD, special_token_ids=(CLS, SEP))
    torch.testing.assert_close(lig(ids, mask, target).sum(-1), f_x - f_pad, rtol=0, atol=2e-3)


def test_keep_specials_baseline_by_hand():
    ids = torch.tensor([[1, 7, 8, 2, 0], [1, 9, 2, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    expected = torch.tensor([[1, 0, 0, 2, 0], [1, 0, 2, 0, 0]])
    assert torch.equal(keep_specials_baseline(ids, mask, PAD, (1, 2)), expected)


def test_random_rows_depend_only_on_the_seed_and_length():
    ids, mask = batch(lengths=(5, 5, 3))
    scores = RandomMethod(seed=3)(ids, mask, torch.zeros(3, dtype=torch.long))
    assert torch.equal(scores[0], scores[1])
    alone = RandomMethod(seed=3)(ids[2:], mask[2:], torch.zeros(1, dtype=torch.long))
    assert torch.equal(scores[2], alone[0])
    assert ((scores >= 0) & (scores < 1)).all()
    assert not torch.equal(scores[0], RandomMethod(seed=4)(ids, mask, torch.zeros(3, dtype=torch.long))[0])


def test_default_methods_cover_every_key_and_leave_the_model_as_found(data):
    model = bert_classifier(dropout=0.3).train()
    ids, mask, target = data
    methods = default_methods(NormXLogit(model), pad_token_id=PAD, special_token_ids=(CLS, SEP), ig_steps=4)
    assert [m.name for m in methods] == [
        "NormXLogit", "LogAt", "Norm", "IntegratedGradients", "LayerIntegratedGradients",
        "Saliency", "InputXGradient", "Random",
    ]
    assert len(methods) == len(METHOD_KEYS)
    for method in methods:
        first = method(ids, mask, target)
        assert first.shape == ids.shape and (first[~mask.bool()] == 0).all()
        # eval mode inside: dropout would make a second call differ
        torch.testing.assert_close(method(ids, mask, target), first)
    assert all(m.training for m in model.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_bad_requests_fail_clearly(bert, data):
    ids, mask, target = data
    nx = NormXLogit(bert)
    with pytest.raises(ValueError, match="Unknown method 'gradcam'"):
        build_method("gradcam", nx)
    with pytest.raises(ValueError, match="needs pad_token_id"):
        build_method("layer_ig", nx)
    with pytest.raises(ValueError, match="zero baseline needs inputs='embeds'"):
        CaptumMethod("x", IntegratedGradients(nx.forward_func), bert, inputs="ids", baselines="zero")
    with pytest.raises(ValueError, match="reduction must be one of"):
        build_method("saliency", nx, reduction="max")
    with pytest.raises(TypeError, match="captum.attr.Attribution"):
        CaptumMethod("x", nx.forward_func, bert)
    with pytest.raises(ValueError, match="one target per example"):
        build_method("normxlogit", nx)(ids, mask, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="attention_mask"):
        build_method("normxlogit", nx)(ids, mask[:, :-1], target)


def test_an_unreduced_custom_method_is_refused(bert, data):
    ids, mask, target = data

    class Unreduced(CaptumMethod):
        def attribute(self, *args):
            return torch.zeros(*ids.shape, 4)

    method = Unreduced("raw", IntegratedGradients(NormXLogit(bert).forward_func), bert)
    with pytest.raises(ValueError, match="give it a reduction"):
        method(ids, mask, target)


def test_method_key_lists_are_parsed_and_checked():
    assert parse_method_keys(" normxlogit, ig ,normxlogit,,saliency") == ["normxlogit", "ig", "saliency"]
    with pytest.raises(ValueError, match=r"unknown \['lime'\]; choose from normxlogit, logat"):
        parse_method_keys("normxlogit,lime")
    with pytest.raises(ValueError, match="unknown empty list"):
        parse_method_keys(" , ")
