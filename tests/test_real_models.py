"""The real models: fine-tuned MiniLM (Rotten-Tomatoes) and SmolLM2-135M, against the authors' loop."""

import pytest
import torch
from captum.attr import LayerIntegratedGradients

from captum_normxlogit import NormXLogit

pytestmark = pytest.mark.real

SENTENCES = [
    "a gorgeous , witty , seductive movie .",
    "boring , predictable and badly acted .",
    "the acting was superb and the story deeply moving .",
    "an utterly dull and lifeless mess .",
]


@pytest.fixture(scope="module")
def minilm():
    from captum_normxlogit.resources import load_sentiment_minilm

    return load_sentiment_minilm(train_if_missing=False, progress=False)


@pytest.fixture(scope="module")
def smollm2():
    from captum_normxlogit.resources import load_smollm2

    return load_smollm2()


def _authors_loop(model, ids, mask, types, predicted):
    """Experiment-1 notebook, per token: ||H0_i|| * classifier(dropout(pooler(H12[b][i:n])))[p]."""
    out = model(ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
    h0, hl = out.hidden_states[0], out.hidden_states[-1]
    scores = torch.zeros(ids.shape)
    for b in range(ids.shape[0]):
        n = int(mask[b].sum())
        for i in range(n):
            logit = model.classifier(model.dropout(model.bert.pooler(hl[b][i:n].unsqueeze(0))))[0, predicted[b]]
            scores[b, i] = h0[b, i].norm() * logit
    return scores


def test_minilm_equals_the_authors_loop_on_real_sentences(minilm):
    model, tokenizer = minilm
    enc = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    ids, mask, types = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]
    nx = NormXLogit(model)
    ours = nx.attribute(ids, additional_forward_args=(mask, types))
    with torch.no_grad():
        predicted = model(ids, attention_mask=mask, token_type_ids=types).logits.argmax(-1)
        reference = _authors_loop(model, ids, mask, types, predicted)
    assert predicted.tolist() == [1, 0, 1, 0]  # POSITIVE, NEGATIVE, POSITIVE, NEGATIVE
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


def test_minilm_sentiment_words_carry_the_prediction(minilm):
    model, tokenizer = minilm
    enc = tokenizer(SENTENCES[:2], padding=True, return_tensors="pt")
    scores = NormXLogit(model).attribute(enc["input_ids"], additional_forward_args=(enc["attention_mask"],))
    for b, words in ((0, {"gorgeous", "witty", "seductive"}), (1, {"boring", "predictable", "badly"})):
        tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][b])
        top = {tokens[i] for i in scores[b].topk(3).indices.tolist()}
        assert top & words, (tokens, scores[b])


def test_layer_integrated_gradients_on_forward_func_converges(minilm):
    model, tokenizer = minilm
    enc = tokenizer(SENTENCES[:2], padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    nx = NormXLogit(model)
    baseline = torch.where(torch.isin(ids, torch.tensor(tokenizer.all_special_ids)), ids, tokenizer.pad_token_id)
    lig = LayerIntegratedGradients(nx.forward_func, model.bert.embeddings)
    _, delta = lig.attribute(
        ids,
        baselines=baseline,
        target=[1, 0],
        additional_forward_args=(mask,),
        n_steps=50,
        return_convergence_delta=True,
    )
    assert delta.abs().max() < 0.05


def test_smollm2_paris_and_the_reference(smollm2):
    model, tokenizer = smollm2
    ids = tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    nx = NormXLogit(model)
    with torch.no_grad():
        logits = nx.forward_func(ids)
        assert tokenizer.decode(logits.argmax(-1)) == " Paris"
        out = model(ids, output_hidden_states=True)
        torch.testing.assert_close(logits[0], out.logits[0, -1], rtol=1e-4, atol=1e-4)
        paris = int(logits.argmax(-1))
        # hidden_states[-1] is already final-normed in transformers 5: unembed it as is
        reference = out.hidden_states[0][0].norm(dim=-1) * model.lm_head(out.hidden_states[-1][0])[:, paris]
    torch.testing.assert_close(nx.attribute(ids)[0], reference, rtol=1e-4, atol=1e-4)


def test_smollm2_left_padded_batch_equals_each_prompt_alone(smollm2):
    model, tokenizer = smollm2
    prompts = ["The capital of France is", "My favourite colour is"]
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, padding=True, return_tensors="pt")
    nx = NormXLogit(model)
    batched = nx.attribute(enc["input_ids"], additional_forward_args=(enc["attention_mask"],))
    for b, prompt in enumerate(prompts):
        alone = nx.attribute(tokenizer(prompt, return_tensors="pt")["input_ids"])[0]
        torch.testing.assert_close(batched[b, -alone.numel() :], alone, rtol=1e-4, atol=1e-4)
        assert torch.all(batched[b, : batched.shape[1] - alone.numel()] == 0)
