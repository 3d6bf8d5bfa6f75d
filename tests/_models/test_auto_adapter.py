"""The verified automatic adapter (captum_normxlogit/_models/auto.py, _models/verify.py).

With the registry bypassed it must give exactly the registry's results on registered families (and the
independent reference's, tests/_reference.py); it must refuse, naming the failed check, a head with a
scale it cannot see, a model whose blocks pool tokens and a block list that is not the model's; and a
failed verification leaves no hook, no changed mode and no changed weight behind.
"""

from __future__ import annotations

import types
import warnings
from typing import Any

import pytest
import torch
import transformers as T
from torch import nn

from captum_normxlogit import Head, ModelAdapter, NormXLogit, UnsupportedModelError
from captum_normxlogit._models import registry
from captum_normxlogit._models.auto import auto_adapter, try_auto_adapter
from captum_normxlogit._models.verify import verify_adapter
from tests import _reference as R
from tests._support.families import MASK, SPECS, build, make_batch
from tests._support.hooks import hook_count as _hook_count
from tests._support.tiny import bert_classifier, llama_lm

# Registered families the automatic adapter must reproduce (classifiers, masked and causal LMs).
SAME_AS_REGISTRY = [
    "bert_cls",
    "roberta_cls",
    "electra_cls",
    "deberta_cls",
    "modernbert_cls",
    "mpnet_cls",
    "gpt2_cls",
    "llama_cls",
    "gemma2_cls",
    "mixtral_cls",
    "bert_reg",
    "bert_mlm",
    "roberta_mlm",
    "modernbert_mlm",
    "mpnet_mlm",
    "deberta_mlm",
    "gpt2_lm",
    "llama_lm",
    "qwen2_lm",
    "phi_lm",
    "gptneox_lm",
    "bloom_lm",
    "mixtral_lm",
    "qwen2moe_lm",
]


def _quiet_auto(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return auto_adapter(model)


def _nx(name, adapter=None):
    return NormXLogit(build(name), adapter=adapter, mask_token_id=MASK if SPECS[name].kind == "mlm" else None)


@pytest.mark.parametrize("name", SAME_AS_REGISTRY)
def test_registry_bypassed_gives_the_registrys_results(name):
    model = build(name)
    auto = _quiet_auto(model)
    registered = registry.adapter_for(model)
    assert [id(b) for b in auto.blocks] == [id(b) for b in registered.blocks]
    assert auto.prediction_at == registered.prediction_at
    assert auto.requires_right_padding == registered.requires_right_padding
    sides = (False, True) if SPECS[name].decoder else (False,)
    for left in sides:
        bt = make_batch(left=left, mlm=SPECS[name].kind == "mlm")
        got = _nx(name, auto).attribute_all_layers(bt.ids, additional_forward_args=(bt.mask,))
        want = _nx(name).attribute_all_layers(bt.ids, additional_forward_args=(bt.mask,))
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
        ref = R.reference(model, bt.ids, bt.mask, mask_token_id=MASK)  # independent of the package
        torch.testing.assert_close(got[:, -1], ref.scores[-1], atol=1e-5, rtol=1.3e-6)
        if SPECS[name].kind != "mlm":
            torch.testing.assert_close(
                _nx(name, auto).forward_func(bt.ids, bt.mask).detach(),
                _nx(name).forward_func(bt.ids, bt.mask).detach(),
                atol=1e-6,
                rtol=0,
            )


def test_normxlogit_falls_back_to_it_when_the_family_is_not_registered(monkeypatch):
    model = llama_lm()  # a fresh model: the automatic adapter's decision is kept per model object
    bt = make_batch(left=True)
    want = NormXLogit(model).attribute_all_layers(bt.ids, additional_forward_args=(bt.mask,))
    monkeypatch.delitem(registry._BY_MODEL_TYPE, "llama")
    with pytest.warns(UserWarning, match="LlamaForCausalLM.*verified automatic adapter"):
        nx = NormXLogit(model)
    torch.testing.assert_close(
        nx.attribute_all_layers(bt.ids, additional_forward_args=(bt.mask,)), want, atol=1e-6, rtol=0
    )
    with warnings.catch_warnings():  # the decision is kept per model: no second probe, no second warning
        warnings.simplefilter("error")
        NormXLogit(model)


def test_an_unregistered_family_matches_a_hand_written_adapter():
    torch.manual_seed(0)
    model = T.OlmoForCausalLM(
        T.OlmoConfig(
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            pad_token_id=0,
        )
    ).eval()
    assert registry.registered_family(model) is None
    with pytest.warns(UserWarning, match="OlmoForCausalLM"):
        nx = NormXLogit(model)
    by_hand = ModelAdapter(
        model,
        head=Head("causal_lm", ("model.norm",), "lm_head"),
        blocks="layers",
        backbone="model",
        position_ids_from_mask=True,
        use_cache=False,
    )
    bt = make_batch(left=True)
    torch.testing.assert_close(
        nx.attribute_all_layers(bt.ids, additional_forward_args=(bt.mask,)),
        NormXLogit(model, adapter=by_hand).attribute_all_layers(bt.ids, additional_forward_args=(bt.mask,)),
        atol=0,
        rtol=0,
    )


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    "name, check",
    [
        ("granite_lm", "head-logits"),  # divides its logits by config.logits_scaling
        ("cohere_lm", "head-logits"),  # multiplies them by logit_scale
        ("gemma3_lm", "head-logits"),  # soft-caps them
        ("distilbert_cls", "head-logits"),  # a ReLU in forward() that is no module
    ],
)
def test_a_head_with_an_extra_step_it_cannot_see_is_refused(name, check):
    model = build(name)
    with pytest.raises(UnsupportedModelError) as info:
        auto_adapter(model)
    reason = info.value.reason
    assert type(model).__name__ in reason and f"{check} check" in reason and "largest difference" in reason
    assert "ModelAdapter(" in str(info.value) and "Head(" in str(info.value)
    # the registered entry, which names the step, passes the same two checks
    assert verify_adapter(registry.adapter_for(model)).passed


def test_a_convolution_outside_the_blocks_fails_the_hidden_state_check():
    torch.manual_seed(0)
    # num_labels / conv_kernel_size: PretrainedConfig keywords (and one model-specific) the stubs omit.
    config = T.DebertaV2Config(  # type: ignore[call-arg]
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        conv_kernel_size=3,
        relative_attention=True,
        position_biased_input=False,
        num_labels=3,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=0.2,
    )
    model = T.DebertaV2ForSequenceClassification(config).eval()
    outcome = try_auto_adapter(model)
    assert outcome.adapter is None and "hidden-states check" in outcome.reason
    assert outcome.verification is not None
    assert outcome.verification.hidden.max_diff > outcome.verification.hidden.tolerance


def test_funnel_whose_blocks_pool_tokens_is_refused():
    torch.manual_seed(0)
    config = T.FunnelConfig(  # type: ignore[call-arg]  # num_labels
        vocab_size=99,
        d_model=32,
        n_head=4,
        d_head=8,
        d_inner=37,
        block_sizes=[1, 1],
        num_decoder_layers=1,
        num_labels=3,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )
    model = T.FunnelForSequenceClassification(config).eval()
    with pytest.raises(UnsupportedModelError, match="FunnelForSequenceClassification"):
        NormXLogit(model)


class _Pooling(nn.Module):
    """A block that averages neighbouring tokens: the sequence halves, as in Funnel."""

    def __init__(self, dim):
        super().__init__()
        self.mix = nn.Linear(dim, dim)

    def forward(self, hidden_states, attention_mask=None):
        return self.mix(nn.functional.avg_pool1d(hidden_states.transpose(1, 2), 2, ceil_mode=True).transpose(1, 2))


class _PoolingBackbone(nn.Module):
    def __init__(self, vocab, dim, n_layers):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(_Pooling(dim) for _ in range(n_layers))

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None, output_hidden_states=False, **_):
        h = self.embed(input_ids) if inputs_embeds is None else inputs_embeds
        states = [h]
        for layer in self.layers:
            h = layer(h)
            states.append(h)
        return h, states


class PoolingToyForSequenceClassification(nn.Module):
    """Laid out like a Hugging Face classifier (config, base_model_prefix, classifier), but its blocks pool."""

    base_model_prefix = "toy"

    def __init__(self, vocab=99, dim=16, n_layers=2, labels=3):
        super().__init__()
        self.config = types.SimpleNamespace(
            model_type="pooling-toy", num_hidden_layers=n_layers, num_labels=labels, vocab_size=vocab, pad_token_id=0
        )
        self.toy = _PoolingBackbone(vocab, dim, n_layers)
        self.classifier = nn.Linear(dim, labels)

    def get_input_embeddings(self):
        return self.toy.embed

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None, output_hidden_states=False, **_):
        last, states = self.toy(input_ids, inputs_embeds)
        return types.SimpleNamespace(logits=self.classifier(last[:, 0]), hidden_states=tuple(states))


def test_blocks_that_change_the_sequence_length_are_refused_never_given_numbers():
    torch.manual_seed(0)
    model = PoolingToyForSequenceClassification().eval()
    with pytest.raises(UnsupportedModelError) as info:
        NormXLogit(model)
    assert "hidden-states check" in info.value.reason and "sequence length" in info.value.reason


# ----------------------------------------------------------------------------- hygiene and verify=True
def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}, [m.training for m in model.modules()]


@pytest.mark.parametrize(
    "build_model",
    [
        lambda: build("granite_lm"),  # fails the head-logits check
        lambda: PoolingToyForSequenceClassification(),  # fails the hidden-state check
    ],
)
def test_a_failed_verification_leaves_no_hook_and_no_changed_mode(build_model):
    model = build_model()
    model.train()
    next(m for m in model.modules() if isinstance(m, nn.Linear)).eval()  # a mixed mode, restored exactly
    weights, modes = _state(model)
    hooks = _hook_count(model)
    try:
        with pytest.raises(UnsupportedModelError):
            auto_adapter(model)
        assert _hook_count(model) == hooks
        assert [m.training for m in model.modules()] == modes
        after, _ = _state(model)
        assert all(torch.equal(after[k], weights[k]) for k in weights)
    finally:
        model.eval()


def test_a_forward_pass_that_raises_refuses_and_cleans_up():
    model = bert_classifier()

    class _Broken(RuntimeError):
        pass

    def explode(module, args):
        raise _Broken("boom")

    hooks = _hook_count(model)  # transformers keeps a few of its own
    handle = model.bert.encoder.layer[1].register_forward_pre_hook(explode)
    model.train()
    try:
        outcome = try_auto_adapter(model)
        assert _hook_count(model) == hooks + 1  # only the test's own hook is left
        assert all(m.training for m in model.modules())
    finally:
        handle.remove()
        model.eval()
    assert outcome.adapter is None and "raised _Broken: boom" in outcome.reason


def test_verify_true_names_the_check_a_wrong_custom_adapter_fails():
    model = build("llama_lm")
    hooks = _hook_count(model)
    kw: dict[str, Any] = dict(blocks="layers", backbone="model", position_ids_from_mask=True, use_cache=False)
    no_norm = ModelAdapter(model, head=Head("causal_lm", (), "lm_head"), **kw)
    with pytest.raises(UnsupportedModelError, match="hidden-states check"):
        NormXLogit(model, adapter=no_norm, verify=True)
    # (a doubled RMSNorm would not do: with its initial unit weight it is idempotent)
    scaled = ModelAdapter(model, head=Head("causal_lm", ("model.norm",), "lm_head", logit_multiplier=2.0), **kw)
    with pytest.raises(UnsupportedModelError, match="head-logits check .*largest difference"):
        NormXLogit(model, adapter=scaled, verify=True)
    assert _hook_count(model) == hooks
    right = ModelAdapter(model, head=Head("causal_lm", ("model.norm",), "lm_head"), **kw)
    assert NormXLogit(model, adapter=right, verify=True).n_layers == 2


def test_a_model_without_a_config_keeps_the_custom_adapter_message():
    with pytest.raises(UnsupportedModelError) as info:
        NormXLogit(nn.Linear(2, 2))
    assert "Linear" in info.value.reason and "ModelAdapter(" in str(info.value)
