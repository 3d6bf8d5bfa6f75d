"""LLMNormXLogit: the whole-generation matrix from one teacher-forced pass, in Captum's LLMAttributionResult.

Expected values come from the per-token reference loop (tests/_reference.py) run on ``prompt + y_<j`` with
target ``y_j``, i.e. a separate attribution per generated token, and from Hugging Face's own full forward pass
(probabilities) and ``generate`` (greedy targets).
"""

from __future__ import annotations

from typing import cast

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
import transformers as T
from captum.attr import LLMAttributionResult, TextTemplateInput, TextTokenInput

import captum_normxlogit._core.normxlogit as core
from captum_normxlogit import LLMNormXLogit, NormXLogit
from captum_normxlogit.visualization import plot_llm_layer_heatmap
from tests._reference import reference
from tests._support.families import build, n_layers
from tests._support.hooks import hook_count as _hook_count

ATOL = 1e-5
FAMILIES = ["llama_lm", "gpt2_lm", "mistral_lm", "qwen2_lm", "gemma_lm", "phi_lm", "opt_lm", "gptneox_lm"]
PROMPT = "w12 w40 w7 w33 w61 w25"
TARGET = [17, 54, 9, 71]


def _ids(text: str) -> torch.Tensor:
    return torch.tensor([[int(w[1:]) for w in text.split()]])


def _reference_row(model, prompt: torch.Tensor, target: list, j: int, foil: int | None = None) -> torch.Tensor:
    """A separate attribution for output token j: the reference loop on prompt + y_<j, target y_j."""
    ids = torch.cat([prompt, torch.tensor([target[:j]], dtype=torch.long)], dim=1)
    L = n_layers(model)
    row = reference(model, ids, target=target[j]).scores[L][0]
    if foil is not None:
        row = row - reference(model, ids, target=foil).scores[L][0]
    return row


# ----------------------------------------------------------------------------- the matrix, per family
@pytest.mark.parametrize("name", FAMILIES)
def test_every_row_equals_a_separate_attribution(name, tokenizer):
    model = build(name)
    prompt = _ids(PROMPT)
    P, m = prompt.shape[1], len(TARGET)
    llm = LLMNormXLogit(NormXLogit(model), tokenizer)
    res = llm.attribute(PROMPT, target=torch.tensor(TARGET))
    full = llm.attribute(PROMPT, target=torch.tensor(TARGET), include_generated=True)
    assert isinstance(res, LLMAttributionResult)
    assert res.token_attr.shape == (m, P) and full.token_attr.shape == (m, P + m - 1)
    assert res.input_tokens == PROMPT.split() and res.output_tokens == [f"w{t}" for t in TARGET]
    assert full.input_tokens == PROMPT.split() + [f"w{t}" for t in TARGET[:-1]]
    for j in range(m):
        expected = _reference_row(model, prompt, TARGET, j)  # (P + j,)
        torch.testing.assert_close(res.token_attr[j], expected[:P], atol=ATOL, rtol=0)
        torch.testing.assert_close(full.token_attr[j, : P + j], expected, atol=ATOL, rtol=0)
        assert bool((full.token_attr[j, P + j :] == 0).all()), "positions >= p_j are not inputs of step j"
        # the core on the prompt alone gives the same prompt columns (h_i does not see later tokens)
        alone = NormXLogit(model).attribute(prompt, target=TARGET[j])[0]
        torch.testing.assert_close(res.token_attr[j], alone, atol=ATOL, rtol=0)
    torch.testing.assert_close(res.seq_attr, res.token_attr.sum(0))
    # output_probs: the model's own probability of y_j after prompt + y_<j, from HF's full forward
    with torch.no_grad():
        logits = model(torch.cat([prompt, torch.tensor([TARGET])], 1), use_cache=False).logits[0]
    probs = logits[P - 1 : P - 1 + m].softmax(-1)[torch.arange(m), torch.tensor(TARGET)]
    torch.testing.assert_close(res.output_probs, probs, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", FAMILIES)
def test_target_none_generates_greedily(name, tokenizer):
    model = build(name)
    prompt = _ids(PROMPT)
    gen_args = {"max_new_tokens": 3, "do_sample": False}
    with torch.no_grad():
        generate = cast(T.GenerationMixin, model).generate
        out = generate(prompt, attention_mask=torch.ones_like(prompt), pad_token_id=0, **gen_args)[0, 6:]
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    stop = next((k + 1 for k, t in enumerate(out.tolist()) if t in eos), out.numel())
    expected_target = out[:stop].tolist()
    res = LLMNormXLogit(model, tokenizer).attribute(PROMPT, gen_args=gen_args)
    assert res.output_tokens == [f"w{t}" for t in expected_target]
    for j in range(len(expected_target)):
        expected = _reference_row(model, prompt, expected_target, j)
        torch.testing.assert_close(res.token_attr[j], expected[:6], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", FAMILIES)
def test_batch_with_left_padding_equals_one_prompt_at_a_time(name, tokenizer):
    model = build(name)
    llm = LLMNormXLogit(model, tokenizer)
    prompts = ["w12 w40 w7", "w5 w6 w7 w8 w9 w10 w11", "w90 w80 w70 w60 w50"]
    targets = [[17, 54], [9, 71, 30, 44], [66]]
    batch = llm.attribute_batch(prompts, targets, include_generated=True)
    for prompt, target, got in zip(prompts, targets, batch):
        alone = llm.attribute(prompt, target=target, include_generated=True)
        torch.testing.assert_close(got.token_attr, alone.token_attr, atol=ATOL, rtol=0)
        torch.testing.assert_close(got.output_probs, alone.output_probs, atol=1e-6, rtol=1e-5)
        assert got.input_tokens == alone.input_tokens and got.output_tokens == alone.output_tokens


def test_batch_generation_rows_match_single_attribution(tokenizer):
    model = build("llama_lm")
    llm = LLMNormXLogit(model, tokenizer)
    prompts = ["w12 w40 w7", "w5 w6 w7 w8 w9 w10 w11"]
    batch = llm.attribute_batch(prompts, gen_args={"max_new_tokens": 3, "do_sample": False})
    for prompt, got in zip(prompts, batch):
        target = [int(t[1:]) for t in got.output_tokens]
        alone = llm.attribute(prompt, target=target)
        torch.testing.assert_close(got.token_attr, alone.token_attr, atol=ATOL, rtol=0)


# ----------------------------------------------------------------------------- contrastive
@pytest.mark.parametrize("name", ["llama_lm", "gpt2_lm", "phi_lm"])
def test_contrastive_is_the_difference_of_two_single_target_results(name, tokenizer):
    model = build(name)
    llm = LLMNormXLogit(model, tokenizer)
    # one output token: target - foil equals attribute(target) - attribute(foil), same context
    contrast = llm.attribute(PROMPT, target="w17", foil="w54")
    diff = llm.attribute(PROMPT, target="w17").token_attr - llm.attribute(PROMPT, target="w54").token_attr
    torch.testing.assert_close(contrast.token_attr, diff, atol=ATOL, rtol=0)
    # several output tokens, one foil per row (a string as long as the target), against the reference loop
    foils = [30, 5, 88, 71]
    rows = llm.attribute(PROMPT, target=torch.tensor(TARGET), foil=" ".join(f"w{f}" for f in foils))
    one = llm.attribute(PROMPT, target=torch.tensor(TARGET), foil=30)  # one foil token for every row
    for j in range(len(TARGET)):
        expected = _reference_row(model, _ids(PROMPT), TARGET, j, foil=foils[j])
        torch.testing.assert_close(rows.token_attr[j], expected[:6], atol=ATOL, rtol=0)
        expected_one = _reference_row(model, _ids(PROMPT), TARGET, j, foil=30)
        torch.testing.assert_close(one.token_attr[j], expected_one[:6], atol=ATOL, rtol=0)


# ----------------------------------------------------------------------------- layer view
@pytest.mark.parametrize("name", ["llama_lm", "gemma_lm", "opt_lm"])
def test_layer_view_matches_reference_at_every_layer(name, tokenizer):
    model = build(name)
    prompt, L = _ids(PROMPT), n_layers(model)
    view = LLMNormXLogit(model, tokenizer).attribute_layers(PROMPT, target=torch.tensor(TARGET[:2]))
    assert view.scores.shape == (2, L + 1, 6) and view.layers == list(range(L + 1))
    for j in range(2):
        ids = torch.cat([prompt, torch.tensor([TARGET[:j]], dtype=torch.long)], dim=1)
        ref = reference(model, ids, target=TARGET[j])  # final norm on layers < L only: applied exactly once
        for layer in range(L + 1):
            torch.testing.assert_close(view.scores[j, layer], ref.scores[layer][0, :6], atol=ATOL, rtol=0)
    fig = plot_llm_layer_heatmap(view, 1)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == PROMPT.split()
    assert len(ax.get_yticklabels()) == L + 1


def test_the_result_s_own_plot_method_is_deprecated_and_draws_the_view_s_figure(tokenizer):
    view = LLMNormXLogit(build("llama_lm"), tokenizer).attribute_layers(PROMPT, target=torch.tensor(TARGET[:2]))
    with pytest.warns(DeprecationWarning, match="plot_llm_layer_heatmap"):
        old = view.plot_layer_heatmap(-1)
    new = plot_llm_layer_heatmap(view, -1)
    old_cells, new_cells = old.axes[0].get_images()[0].get_array(), new.axes[0].get_images()[0].get_array()
    assert old_cells is not None and new_cells is not None
    for a, b in zip(old_cells, new_cells):
        assert list(a) == list(b)
    assert old.axes[0].get_title() == new.axes[0].get_title() and repr(view.output_tokens[1]) in new.axes[0].get_title()
    with pytest.raises(IndexError, match="0..1"):
        plot_llm_layer_heatmap(view, 2)


def test_layer_view_keeps_only_the_requested_hidden_states(tokenizer, monkeypatch):
    model = build("llama_lm")
    kept = []
    original = core.capture_hidden_states

    def spy(blocks, wanted):
        kept.append(set(wanted))
        return original(blocks, wanted)

    monkeypatch.setattr(core, "capture_hidden_states", spy)
    view = LLMNormXLogit(model, tokenizer).attribute_layers(PROMPT, target="w17", layers=[1])
    assert view.layers == [1] and view.scores.shape == (1, 1, 6)
    # the norm (0), the asked layer (1) and the last one for output_probs (2); nothing else
    assert kept == [{0, 1, n_layers(model)}]


# ----------------------------------------------------------------------------- one pass, Captum plumbing
def test_one_forward_pass_and_no_vocab_sized_tensor(tokenizer):
    model = build("llama_lm")
    calls, head_calls = [], []
    hooks = [
        model.model.register_forward_hook(lambda *a: calls.append(1)),
        model.lm_head.register_forward_hook(lambda *a: head_calls.append(1)),
    ]
    try:
        LLMNormXLogit(model, tokenizer).attribute_batch(
            ["w12 w40 w7", "w5 w6 w7 w8 w9"], [[17, 54, 9], [9, 71]], foil=30
        )
    finally:
        for h in hooks:
            h.remove()
    assert calls == [1], "the whole matrix must come from one backbone pass"
    assert not head_calls, "the full lm_head must never run: only target rows are gathered"


def test_captum_plots_and_skip_tokens(tokenizer):
    model = build("gpt2_lm")
    inp = TextTokenInput(PROMPT, tokenizer, skip_tokens=["w7", "w61"])
    res = LLMNormXLogit(model, tokenizer).attribute(inp, target="w17 w54")
    plain = LLMNormXLogit(model, tokenizer).attribute(PROMPT, target="w17 w54")
    assert res.input_tokens == ["w12", "w40", "w33", "w25"]
    torch.testing.assert_close(res.token_attr, plain.token_attr[:, [0, 1, 3, 5]])
    fig, ax = res.plot_token_attr(show=False)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["w17", "w54"]
    fig2, _ = res.plot_seq_attr(show=False)
    import matplotlib.pyplot as plt  # after matplotlib.use("Agg") at the top

    plt.close(fig)
    plt.close(fig2)


def test_nx_layer_and_ablation_carry_over(tokenizer):
    model = build("qwen2_lm")
    prompt = _ids(PROMPT)
    res = LLMNormXLogit(NormXLogit(model, layer=1, multiply_by_inputs=False), tokenizer).attribute(
        PROMPT, target=[17, 54]
    )
    ids = torch.cat([prompt, torch.tensor([[17]])], dim=1)
    ref = reference(model, ids, target=54)
    torch.testing.assert_close(res.token_attr[1], ref.logat[1][0, :6], atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(inp=TextTemplateInput("{} is", values=["Paris"])), TypeError, "TextTemplateInput"),
        (dict(target="w17", gen_args={"max_new_tokens": 2}), ValueError, "gen_args is used only"),
        (dict(target="w17 w54", foil="w1 w2 w3"), ValueError, "foil holds 3 tokens for 2 target tokens"),
        (dict(target=[17, 120]), ValueError, r"target ids \[120\] lie outside the vocabulary"),
        (dict(target=""), ValueError, "target is an empty string"),
        (dict(target="w17", foil=2.5), TypeError, "foil must be a string"),
        (dict(inp=""), ValueError, "empty string"),
    ],
)
def test_bad_requests_raise_before_the_model_runs(tokenizer, kwargs, error, match):
    model = build("llama_lm")
    before = _hook_count(model)
    calls = []
    handle = model.model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(error, match=match):
            LLMNormXLogit(model, tokenizer).attribute(**{"inp": PROMPT, **kwargs})
    finally:
        handle.remove()
    assert not calls and _hook_count(model) == before
    assert not any(m.training for m in model.modules())


def test_only_causal_lms_and_single_layers_are_accepted(tokenizer):
    with pytest.raises(ValueError, match="causal LM"):
        LLMNormXLogit(build("bert_cls"), tokenizer)
    with pytest.raises(ValueError, match="one layer"):
        LLMNormXLogit(NormXLogit(build("llama_lm"), layer=[1, 2]), tokenizer)


# ----------------------------------------------------------------------------- the real model
@pytest.mark.real
def test_smollm2_paris():
    from captum_normxlogit.resources import load_smollm2

    lm, tok = load_smollm2()
    text = "The capital of France is"
    ids = tok(text, return_tensors="pt")["input_ids"]
    res = LLMNormXLogit(NormXLogit(lm), tok).attribute(text, gen_args={"max_new_tokens": 1, "do_sample": False})
    paris = tok.encode(" Paris", add_special_tokens=False)
    assert len(paris) == 1 and res.output_tokens == ["Paris"]
    with torch.no_grad():
        p = lm(ids).logits[0, -1].softmax(-1)[paris[0]]
    torch.testing.assert_close(res.output_probs[0], p, atol=1e-5, rtol=1e-4)
    expected = reference(lm, ids, target=paris[0]).scores[lm.config.num_hidden_layers][0]
    torch.testing.assert_close(res.token_attr[0], expected, atol=1e-3, rtol=1e-5)
