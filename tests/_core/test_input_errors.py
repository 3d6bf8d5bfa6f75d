"""Model inputs that used to be silently coerced or to fail with a raw torch/transformers error.

Each test is a regression test of one finding of issue 10 (named in docs/reliability.md, "Errors (model
inputs)"): bad input raises a sentence naming what is wrong and what to do, and changes nothing; inputs that
can be handled (return_dict=False, quantised heads, DataParallel / torch.compile wrappers) give the scores of
the plain model.
"""

from __future__ import annotations

from typing import cast

import pytest
import torch
import transformers as T
from torch import nn

from captum_normxlogit import Head, LLMNormXLogit, ModelAdapter, NormXLogit
from tests._reference import reference
from tests._support.hooks import hook_count as _hook_count
from tests._support.tiny import VOCAB, batch, bert_classifier, llama_lm
from tests._support.tokenizers import wordlevel


def _state(model: nn.Module):
    return [m.training for m in model.modules()], _hook_count(model), torch.is_grad_enabled()


def _half_mask(mask):
    out = mask.float()
    out[0, 1] = 0.5
    return out


# ----------------------------------------------------------------------------- silent coercions
@pytest.mark.parametrize(
    "call, error, match",
    [
        # a float mask of 0.5 used to become 0 (the token was silently dropped)
        (lambda nx, ids, mask: nx.attribute(ids, additional_forward_args=(_half_mask(mask),)), ValueError, "only 0"),
        # float token_type_ids used to be truncated to integers
        (
            lambda nx, ids, mask: nx.attribute(ids, additional_forward_args=(mask, torch.full(ids.shape, 0.7))),
            TypeError,
            "integer segment ids",
        ),
        # forward_func validated nothing: a mask of 2 passed straight to the model
        (lambda nx, ids, mask: nx.forward_func(ids, mask * 2), ValueError, "only 0"),
        (lambda nx, ids, mask: nx.forward_func(ids, _half_mask(mask)), ValueError, "only 0"),
        (lambda nx, ids, mask: nx.forward_func(ids, mask, torch.zeros(ids.shape)), TypeError, "integer segment ids"),
        (lambda nx, ids, mask: nx.forward_func(ids, mask[:, :-1]), ValueError, "shape"),
        (lambda nx, ids, mask: nx.forward_func(ids + 200, mask), ValueError, "vocabulary"),
        # raw IndexError from the type embedding before
        (
            lambda nx, ids, mask: nx.attribute(ids, additional_forward_args=(mask, torch.full_like(ids, 2))),
            ValueError,
            "type_vocab_size = 2",
        ),
        (
            lambda nx, ids, mask: nx.attribute(ids, additional_forward_args=(mask, torch.full_like(ids, -1))),
            ValueError,
            "type_vocab_size",
        ),
        # raw RuntimeError / NotImplementedError from meta tensors before
        (lambda nx, ids, mask: nx.attribute(ids.to("meta")), ValueError, "meta device"),
        (lambda nx, ids, mask: nx.attribute(torch.empty(3, 7, 32, device="meta")), ValueError, "meta device"),
        (lambda nx, ids, mask: nx.attribute(ids, additional_forward_args=(mask.to("meta"),)), ValueError, "meta"),
        # raw "mixed dtype (CPU)" RuntimeError before
        (
            lambda nx, ids, mask: nx.attribute(
                nx.model.get_input_embeddings()(ids).detach().double(), additional_forward_args=(mask,)
            ),
            TypeError,
            "torch.float64",
        ),
        # raw "The expanded size of the tensor (600) must match ... (512)" before
        (lambda nx, ids, mask: nx.attribute(torch.randint(5, VOCAB, (1, 600))), ValueError, "position table of 512"),
    ],
)
def test_bad_model_inputs_get_a_sentence_and_change_nothing(bert, call, error, match):
    ids, mask = batch()
    before = _state(bert)
    with pytest.raises(error, match=match):
        call(NormXLogit(bert), ids, mask)
    assert _state(bert) == before


def test_a_float_mask_of_exact_zeros_and_ones_is_still_accepted(bert):
    ids, mask = batch()
    nx = NormXLogit(bert)
    expected = nx.attribute(ids, additional_forward_args=(mask,))
    for same in (mask.float(), mask.bool()):
        torch.testing.assert_close(nx.attribute(ids, additional_forward_args=(same,)), expected, rtol=0, atol=0)


def test_fp32_embeddings_into_a_bf16_model_get_a_sentence():
    model = bert_classifier().to(torch.bfloat16)
    ids, mask = batch()
    embeds = model.get_input_embeddings()(ids).detach().float()
    with pytest.raises(TypeError, match=r"inputs_embeds are torch.float32 .* torch.bfloat16: pass inputs_embeds.to"):
        NormXLogit(model).attribute(embeds, additional_forward_args=(mask,))
    assert _hook_count(model) == 0


def test_an_input_longer_than_a_gpt2_position_table_gets_a_sentence():
    model = T.GPT2LMHeadModel(
        T.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=16, bos_token_id=2, eos_token_id=2)
    ).eval()
    with pytest.raises(ValueError, match="20 tokens long.*position table of 16.*truncat"):
        NormXLogit(model).attribute(torch.randint(5, VOCAB, (1, 20)))
    assert NormXLogit(model).attribute(torch.randint(5, VOCAB, (1, 16))).shape == (1, 16)  # the limit itself works
    assert _hook_count(model) == 0


def test_a_rotary_model_still_takes_inputs_beyond_max_position_embeddings(llama):
    # no pre-check refuses what the model itself handles (the error sentence is written only on failure)
    assert NormXLogit(llama).attribute(torch.randint(5, VOCAB, (1, 80))).shape == (1, 80)


# ----------------------------------------------------------------------------- models that are handled
@pytest.mark.parametrize("factory", [bert_classifier, llama_lm])
def test_return_dict_false_configs_give_the_same_scores(factory):
    ids, mask = batch(left=factory is llama_lm)
    plain, tupled = factory(), factory()
    tupled.config.return_dict = False
    expected = NormXLogit(plain).attribute_all_layers(ids, additional_forward_args=(mask,))
    got = NormXLogit(tupled).attribute_all_layers(ids, additional_forward_args=(mask,))
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    torch.testing.assert_close(NormXLogit(tupled).forward_func(ids, mask), NormXLogit(plain).forward_func(ids, mask))


@pytest.mark.filterwarnings("ignore")
def test_a_dynamically_quantised_head_is_explained_with_its_own_arithmetic():
    ids, mask = batch()
    model = torch.ao.quantization.quantize_dynamic(bert_classifier(), {nn.Linear}, dtype=torch.qint8)
    nx = NormXLogit(model)  # used to raise "Head.output must be an nn.Linear, got Linear"
    ref = reference(model, ids, mask)
    for layer in range(3):
        expected = ref.scores[layer]
        got = NormXLogit(model, layer=layer).attribute(ids, additional_forward_args=(mask,))
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    contrast = nx.attribute(ids, target=0, foil=2, additional_forward_args=(mask,))
    expected = reference(model, ids, mask, target=0).scores[2] - reference(model, ids, mask, target=2).scores[2]
    torch.testing.assert_close(contrast, expected, rtol=1e-5, atol=1e-5)


def test_an_unsupported_head_names_its_full_class():
    model = bert_classifier()
    model.classifier = nn.Bilinear(32, 32, 3)
    with pytest.raises(TypeError, match=r"torch.nn.Linear .* got torch.nn.modules.linear.Bilinear"):
        NormXLogit(model)


@pytest.mark.parametrize("wrap", ["DataParallel", "compile"])
def test_data_parallel_and_compiled_models_are_unwrapped(wrap, bert, llama):
    ids, mask = batch()
    # torch.compile is typed as returning a callable; given a Module it returns an OptimizedModule (a Module).
    wrapped = nn.DataParallel(bert) if wrap == "DataParallel" else cast(nn.Module, torch.compile(bert))
    nx = NormXLogit(wrapped)  # used to raise UnsupportedModelError naming DataParallel / OptimizedModule
    assert nx.model is bert
    expected = NormXLogit(bert).attribute(ids, additional_forward_args=(mask,))
    torch.testing.assert_close(nx.attribute(ids, additional_forward_args=(mask,)), expected, rtol=0, atol=0)
    lm = LLMNormXLogit(
        nn.DataParallel(llama) if wrap == "DataParallel" else cast(nn.Module, torch.compile(llama)), wordlevel()
    )
    assert lm.model is llama


# ----------------------------------------------------------------------------- custom adapters
def _llama_head():
    return Head("causal_lm", transform=("model.norm",), output="lm_head")


@pytest.mark.parametrize(
    "blocks, match",
    [
        (lambda m: list(m.model.layers)[:1], r"missing \[1\]"),  # the inner block would be read as "final"
        (lambda m: list(m.model.layers)[::-1], r"execution order"),
    ],
)
def test_a_custom_adapter_listing_only_some_blocks_is_refused(llama, blocks, match):
    with pytest.raises(ValueError, match=match):
        ModelAdapter(llama, head=_llama_head(), blocks=blocks, backbone="model", position_ids_from_mask=True)
    ModelAdapter(llama, head=_llama_head(), blocks="layers", backbone="model")  # the whole list is fine


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = nn.Linear(8, 8)

    def forward(self, h):
        return h + self.mlp(h)


def test_a_sequential_model_may_list_its_blocks_without_the_other_parts():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(20, 8), _Block(), _Block(), nn.LayerNorm(8), nn.Linear(8, 20))
    model.get_input_embeddings = lambda: model[0]  # type: ignore[assignment]  # a Sequential has none
    head = Head("causal_lm", transform=(model[3],), output=model[4])
    with pytest.raises(ValueError, match=r"missing \[2\]"):  # a block of the same kind left out
        ModelAdapter(model, head=head, blocks=[model[1]])
    adapter = ModelAdapter(model, head=head, blocks=[model[1], model[2]])  # embedding and head are not blocks
    assert adapter.n_layers == 2


class _TwoBlocks(nn.Module):
    """Blocks kept as separate attributes (no container), with a config that counts them."""

    def __init__(self):
        super().__init__()
        self.config = type("Config", (), {"num_hidden_layers": 2})()
        self.embed = nn.Embedding(20, 8)
        self.first, self.second = nn.Linear(8, 8), nn.Linear(8, 8)
        self.head = nn.Linear(8, 20)

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None):
        h = self.embed(input_ids) if inputs_embeds is None else inputs_embeds
        return self.second(self.first(h))


def test_a_custom_adapter_is_checked_against_config_num_hidden_layers():
    model = _TwoBlocks().eval()
    with pytest.raises(ValueError, match="lists 1 blocks but _TwoBlocks.config.num_hidden_layers is 2"):
        ModelAdapter(model, head=Head("causal_lm", output="head"), blocks=lambda m: [m.get_submodule("first")])
    both = ("first", "second")
    adapter = ModelAdapter(
        model, head=Head("causal_lm", output="head"), blocks=lambda m: [m.get_submodule(n) for n in both]
    )
    assert NormXLogit(model, adapter=adapter).attribute(torch.randint(0, 20, (1, 4))).shape == (1, 4)


# ----------------------------------------------------------------------------- LLM path
def _expected_generations(model, prompts, gen_args, pad=0):
    """What model.generate gives for the left-padded batch, one row per returned sequence."""
    width = max(len(p.split()) for p in prompts)
    ids = torch.full((len(prompts), width), pad)
    mask = torch.zeros_like(ids)
    for b, p in enumerate(prompts):
        row = torch.tensor([int(w[1:]) for w in p.split()])
        ids[b, width - len(row) :], mask[b, width - len(row) :] = row, 1
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, pad_token_id=pad, **gen_args)
    return out[:, width:].tolist()


def test_num_return_sequences_pairs_each_generation_with_its_own_prompt(llama, tokenizer):
    llm = LLMNormXLogit(llama, tokenizer)
    prompts = ["w12 w40 w7", "w90 w80 w70 w60 w50"]
    gen_args = {"max_new_tokens": 3, "do_sample": False, "num_beams": 2, "num_return_sequences": 2}
    results = llm.attribute_batch(prompts, gen_args=gen_args)
    rows = _expected_generations(llama, prompts, gen_args)
    assert len(results) == 4  # used to be 2: prompt 1 was explained with prompt 0's second generation
    for k, res in enumerate(results):
        prompt = prompts[k // 2]
        assert res.input_tokens == prompt.split()
        generated = [int(t[1:]) for t in res.output_tokens]
        assert generated == rows[k][: len(generated)]
        alone = llm.attribute(prompt, target=generated)
        torch.testing.assert_close(res.token_attr, alone.token_attr, rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", ["attribute", "attribute_layers"])
def test_num_return_sequences_on_one_result_methods_is_refused(llama, tokenizer, method):
    llm = LLMNormXLogit(llama, tokenizer)
    with pytest.raises(ValueError, match="use attribute_batch"):
        getattr(llm, method)("w12 w40", gen_args={"max_new_tokens": 2, "num_beams": 2, "num_return_sequences": 2})
    assert _hook_count(llama) == 0


def test_return_dict_in_generate_is_refused_or_overridden(tokenizer):
    model = llama_lm()
    llm = LLMNormXLogit(model, tokenizer)
    with pytest.raises(ValueError, match="return_dict_in_generate"):
        llm.attribute("w12 w40", gen_args={"max_new_tokens": 2, "return_dict_in_generate": True})
    gen_args = {"max_new_tokens": 2, "do_sample": False}
    expected = llm.attribute("w12 w40", gen_args=gen_args)
    model.generation_config.return_dict_in_generate = True  # the model's own default asks for a dict
    got = llm.attribute("w12 w40", gen_args=gen_args)
    assert got.output_tokens == expected.output_tokens
    torch.testing.assert_close(got.token_attr, expected.token_attr, rtol=0, atol=0)


def test_a_tokenizer_with_a_larger_vocabulary_gets_a_sentence(llama):
    llm = LLMNormXLogit(llama, wordlevel(150))
    before = _state(llama)
    with pytest.raises(ValueError, match=r"Prompt 0 holds token ids \[120\] outside the model's vocabulary"):
        llm.attribute("w12 w120 w7", target=[17])  # used to be a raw IndexError from the embedding
    with pytest.raises(ValueError, match=r"Prompt 1 holds token ids \[140\]"):
        llm.attribute_batch(["w12", "w140"], gen_args={"max_new_tokens": 2})
    assert _state(llama) == before
