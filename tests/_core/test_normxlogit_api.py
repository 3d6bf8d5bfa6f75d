"""Behaviour of NormXLogit beyond the formula: conventions, one pass, modes, hooks, errors."""

import pytest
import torch
from captum.attr import Attribution, LayerAttribution
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from captum_normxlogit import Head, ModelAdapter, NormXLogit, UnsupportedModelError
from tests._support.hooks import hook_count as _hook_count
from tests._support.tiny import MASK, VOCAB, batch, bert_classifier, llama_lm


def _snapshot(model: nn.Module):
    return {k: v.clone() for k, v in model.state_dict().items()}, [m.training for m in model.modules()]


def _unchanged(model: nn.Module, snapshot) -> bool:
    state, modes = snapshot
    same_state = all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    return same_state and modes == [m.training for m in model.modules()] and _hook_count(model) == 0


def test_is_a_captum_attribution_and_layer_attribution(bert):
    nx = NormXLogit(bert)
    assert isinstance(nx, Attribution) and isinstance(nx, LayerAttribution)
    assert NormXLogit.get_name() == "NormXLogit"
    assert nx.has_convergence_delta() is False
    assert nx.multiplies_by_inputs is True
    assert NormXLogit(bert, multiply_by_inputs=False).multiplies_by_inputs is False
    with pytest.raises(NotImplementedError):
        nx.attribute_future()


def test_output_structure_dtype_and_pads(bert):
    ids, mask = batch()
    nx = NormXLogit(bert)
    plain = nx.attribute(ids, additional_forward_args=(mask,))
    as_tuple = nx.attribute((ids,), additional_forward_args=mask)
    assert isinstance(plain, torch.Tensor) and plain.shape == ids.shape and plain.dtype == torch.float32
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 1 and torch.equal(as_tuple[0], plain)
    assert torch.all(plain[mask == 0] == 0)
    assert torch.all(plain[mask == 1] != 0)


def test_layer_list_returns_list_and_matches_all_layers(bert):
    ids, mask = batch()
    blocks = NormXLogit(bert).adapter.blocks
    listed = NormXLogit(bert, layer=[blocks[0], 2, 0]).attribute(ids, additional_forward_args=(mask,))
    every = NormXLogit(bert).attribute_all_layers(ids, additional_forward_args=(mask,))
    assert isinstance(listed, list) and len(listed) == 3
    assert every.shape == (ids.shape[0], 3, ids.shape[1])
    for got, index in zip(listed, (1, 2, 0)):
        torch.testing.assert_close(got, every[:, index], rtol=0, atol=0)
    single = NormXLogit(bert, layer=blocks[1]).attribute(ids, additional_forward_args=(mask,))
    assert isinstance(single, torch.Tensor)
    torch.testing.assert_close(single, NormXLogit(bert).attribute(ids, additional_forward_args=(mask,)))


class _CountCalls:
    def __init__(self, module: nn.Module):
        self.n = 0
        self.handle = module.register_forward_hook(self)

    def __call__(self, *args):
        self.n += 1


@pytest.mark.parametrize("which", ["bert", "llama"])
def test_exactly_one_forward_pass(which, bert, llama):
    model = bert if which == "bert" else llama
    nx = NormXLogit(model)
    ids, mask = batch(left=which == "llama")
    counters = [_CountCalls(nx.adapter.runner), _CountCalls(nx.adapter.blocks[0])]
    try:
        nx.attribute_all_layers(ids, additional_forward_args=(mask,))
    finally:
        for c in counters:
            c.handle.remove()
    assert [c.n for c in counters] == [1, 1]


def test_runs_without_grad_whatever_the_caller(bert):
    ids, mask = batch()
    embeds = bert.get_input_embeddings()(ids).detach().requires_grad_(True)
    with torch.enable_grad():
        scores = NormXLogit(bert).attribute(embeds, additional_forward_args=(mask,))
    assert not scores.requires_grad and scores.grad_fn is None


class _LargestTensor(TorchDispatchMode):
    """Largest tensor any op creates, ignoring views of the model's own weights."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.largest = 0
        self.weights = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in self.weights:
                self.largest = max(self.largest, t.numel())
        return out


def test_no_batch_by_seq_by_vocab_tensor_for_lm_heads(llama):
    torch.manual_seed(0)
    big_vocab = llama_lm()
    big_vocab.resize_token_embeddings(4096, mean_resizing=False)  # vocab dominates every other size
    ids, mask = batch(lengths=(12, 9), left=True)
    spy = _LargestTensor(big_vocab)
    with spy:
        NormXLogit(big_vocab).attribute_all_layers(ids, additional_forward_args=(mask,))
    b, t = ids.shape
    assert spy.largest < b * t * 4096 / 2, spy.largest
    assert spy.largest >= b * 4096  # the one (B, V) prediction row is the largest thing built


def test_training_mode_is_restored_and_results_equal_eval():
    model = bert_classifier(dropout=0.5).train()
    ids, mask = batch()
    nx = NormXLogit(model)
    in_train = nx.attribute_all_layers(ids, additional_forward_args=(mask,))
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    in_eval = nx.attribute_all_layers(ids, additional_forward_args=(mask,))
    torch.testing.assert_close(in_train, in_eval, rtol=0, atol=0)


def test_no_hook_left_after_success_or_exception(bert):
    ids, mask = batch()
    nx = NormXLogit(bert)
    nx.attribute(ids, additional_forward_args=(mask,))
    assert _hook_count(bert) == 0
    too_long = torch.randint(5, VOCAB, (1, 600))  # beyond max_position_embeddings: fails inside the model
    snapshot = _snapshot(bert)
    with pytest.raises(Exception):
        nx.attribute(too_long)
    assert _unchanged(bert, snapshot)


@pytest.mark.parametrize(
    "make_call, message",
    [
        (lambda nx, ids, mask: nx.attribute(ids, additional_forward_args=(mask[:, :-1],)), "shape"),
        (lambda nx, ids, mask: nx.attribute(ids, target=3, additional_forward_args=(mask,)), "out of range"),
        (lambda nx, ids, mask: nx.attribute(ids, target=-1, additional_forward_args=(mask,)), "out of range"),
        (lambda nx, ids, mask: nx.attribute(ids, target=[0, 1], additional_forward_args=(mask,)), "one id per example"),
        (lambda nx, ids, mask: nx.attribute(ids[:, :0]), "empty sequence"),
        (lambda nx, ids, mask: nx.attribute(ids, additional_forward_args=(mask * 0,)), "empty sequence"),
        (lambda nx, ids, mask: nx.attribute(ids, target=(0, 1)), "Tuple targets"),
        (lambda nx, ids, mask: nx.attribute(ids, target=[(0,), (1,), (0,)]), "Tuple targets"),
        (lambda nx, ids, mask: nx.attribute(ids.float()), "neither input_ids nor inputs_embeds"),
        (lambda nx, ids, mask: nx.attribute(torch.randn(3, 7, 5)), "neither input_ids nor inputs_embeds"),
        (lambda nx, ids, mask: nx.attribute(ids + 1000), "vocabulary"),
        (lambda nx, ids, mask: nx.attribute(ids, additional_forward_args=(mask * 2,)), "only 0"),
        (lambda nx, ids, mask: nx.attribute((ids, ids)), "one input tensor"),
        (
            lambda nx, ids, mask: nx.attribute(ids, additional_forward_args=(mask, mask, mask)),
            "additional_forward_args",
        ),
        (lambda nx, ids, mask: nx.attribute(ids.flip(-1), additional_forward_args=(mask.flip(-1),)), "right-padded"),
    ],
)
def test_bad_input_raises_clearly_and_changes_nothing(bert, make_call, message):
    ids, mask = batch()
    nx = NormXLogit(bert)
    snapshot = _snapshot(bert)
    with pytest.raises((ValueError, TypeError), match=message):
        make_call(nx, ids, mask)
    assert _unchanged(bert, snapshot)


def test_bad_layer_arguments(bert):
    with pytest.raises(ValueError, match="not one of the model's 2 transformer blocks"):
        NormXLogit(bert, layer=bert.classifier)
    with pytest.raises(ValueError, match="out of range"):
        NormXLogit(bert, layer=3)
    with pytest.raises(ValueError, match="needs a block"):
        NormXLogit(bert).attribute(torch.randint(5, VOCAB, (1, 4)), attribute_to_layer_input=True)


def test_albert_shared_block_needs_an_index():
    import transformers as T

    albert = T.AlbertForSequenceClassification(
        T.AlbertConfig(
            vocab_size=VOCAB,
            embedding_size=16,
            hidden_size=32,
            num_hidden_layers=3,
            num_attention_heads=4,
            intermediate_size=37,
        )
    ).eval()
    shared = albert.albert.encoder.albert_layer_groups[0]
    with pytest.raises(ValueError, match=r"shared by layers \[1, 2, 3\]"):
        NormXLogit(albert, layer=shared)
    assert NormXLogit(albert, layer=2).attribute(torch.randint(5, VOCAB, (1, 5))).shape == (1, 5)


def test_regression_rejects_a_target():
    model = bert_classifier(num_labels=1)
    with pytest.raises(ValueError, match="regression"):
        NormXLogit(model).attribute(torch.randint(5, VOCAB, (2, 5)), target=0)


def test_masked_lm_needs_mask_token_id():
    import transformers as T

    mlm = T.BertForMaskedLM(
        T.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
    ).eval()
    ids = torch.randint(5, VOCAB, (2, 6))
    with pytest.raises(ValueError, match="mask_token_id"):
        NormXLogit(mlm).attribute(ids)
    with pytest.raises(ValueError, match="exactly one"):
        NormXLogit(mlm, mask_token_id=MASK).attribute(ids)
    ids[:, 2] = MASK
    assert NormXLogit(mlm, mask_token_id=MASK).attribute(ids).shape == (2, 6)
    assert NormXLogit(mlm).attribute(ids, target=[7, 8]).shape == (2, 6)  # explicit target needs no mask


def test_unknown_model_names_its_class_and_the_custom_adapter():
    class Tiny(nn.Module):
        pass

    with pytest.raises(UnsupportedModelError) as info:
        NormXLogit(Tiny())
    text = str(info.value)
    assert "Tiny" in text and "ModelAdapter" in text and "Head(" in text


class _Residual(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.Tanh())

    def forward(self, h):
        return h + self.mlp(h)


class _ToyLM(nn.Module):
    """A non-Hugging-Face model: embedding, residual blocks, norm, unembedding."""

    def __init__(self, vocab=50, dim=16, n_blocks=3):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(_Residual(dim) for _ in range(n_blocks))
        self.norm = nn.LayerNorm(dim)
        self.unembed = nn.Linear(dim, vocab)

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None):
        h = self.embed(input_ids) if inputs_embeds is None else inputs_embeds
        for block in self.blocks:
            h = block(h)
        return h


def test_custom_adapter_explains_a_model_outside_the_registry():
    model = _ToyLM().eval()
    adapter = ModelAdapter(model, head=Head("causal_lm", transform=("norm",), output="unembed"), blocks="blocks")
    nx = NormXLogit(model, adapter=adapter)
    ids = torch.randint(0, 50, (2, 5))
    scores = nx.attribute(ids, target=[4, 9])
    # independent recomputation, full vocabulary logits
    with torch.no_grad():
        h = model.embed(ids)
        norm0 = h.norm(dim=-1)
        for block in model.blocks:
            h = block(h)
        logits = model.unembed(model.norm(h))
    expected = torch.stack([norm0[b] * logits[b, :, t] for b, t in enumerate([4, 9])])
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-5)
    predicted = logits[:, -1].argmax(-1)
    torch.testing.assert_close(
        nx.attribute(ids), torch.stack([norm0[b] * logits[b, :, predicted[b]] for b in range(2)])
    )


def test_adapter_for_another_model_is_rejected(bert):
    other = bert_classifier(seed=1)
    with pytest.raises(ValueError, match="different model"):
        NormXLogit(bert, adapter=NormXLogit(other).adapter)


def test_a_model_dispatched_by_accelerate_gives_the_same_scores(llama, tmp_path):
    # CI has no GPU, so offload to disk instead: offloaded modules keep their weights on the meta
    # device and accelerate's hooks load them per call, the machinery a GPU/CPU split uses too
    # (benchmarks/device_check.py checks a real cuda:0/CPU split). Head and embeddings are offloaded.
    accelerate = pytest.importorskip("accelerate")
    ids, mask = batch(left=True)
    reference = NormXLogit(llama)
    expected = reference.attribute_all_layers(ids, additional_forward_args=(mask,))
    expected_logits = reference.forward_func(ids, mask).detach()
    device_map = {
        "model.embed_tokens": "disk",
        "model.layers.0": "cpu",
        "model.layers.1": "disk",
        "model.norm": "disk",
        "model.rotary_emb": "cpu",
        "lm_head": "disk",
    }
    dispatched = accelerate.dispatch_model(llama_lm(), device_map=device_map, offload_dir=str(tmp_path))
    assert dispatched.lm_head.weight.device.type == "meta"
    nx = NormXLogit(dispatched)
    got = nx.attribute_all_layers(ids, additional_forward_args=(mask,))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(nx.forward_func(ids, mask).detach(), expected_logits, rtol=0, atol=1e-6)
    assert dispatched.lm_head.weight.device.type == "meta"  # offloaded again afterwards
    assert _hook_count(dispatched) == 0
