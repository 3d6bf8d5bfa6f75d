"""The dataset pass runs the model once per batch and hooks it only as NormXLogit does: the probabilities
come from NormXLogit's own pass (NormXLogit.attribute_with_prediction), and the rows are the model's."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from captum_normxlogit import NormXLogit
from captum_normxlogit.dataset import attribute_dataset
from captum_normxlogit.dataset._explainer import RowExplainer
from tests._reference import reference
from tests._support import saved as S

CLM_TEXTS = ["dull film !", "the movie", "bad !", "good good good", "not witty", "the plot is thin ."]
MLM_TEXTS = ["a [MASK] movie .", "the plot is [MASK] .", "[MASK] film !", "a very good [MASK] and a bad plot ."]


def _models():
    bpe = S.bytelevel()
    return {
        "classifier": (S.classifier(), S.wordpiece(), S.SENTENCES),
        "masked_lm": (S.masked_lm(), S.wordpiece(), MLM_TEXTS * 3),
        "causal_lm": (S.causal_lm(bpe), bpe, CLM_TEXTS * 2),
    }


class _Counter:
    r"""Counts forward calls of some modules, and forward hooks registered on the model, while it is on."""

    def __init__(self, model: nn.Module, modules):
        self.model, self.modules = model, dict(modules)
        self.calls = dict.fromkeys(self.modules, 0)
        self.registered = 0
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in self.modules.items()]
        self._ids = {id(m) for m in model.modules()}
        self._original = nn.Module.register_forward_hook
        counter = self

        def counting(module, *args, **kwargs):
            if id(module) in counter._ids:
                counter.registered += 1
            return counter._original(module, *args, **kwargs)

        nn.Module.register_forward_hook = counting  # type: ignore[method-assign, assignment]  # counts, then delegates

    def _hook(self, name):
        def hook(module, args, output):
            self.calls[name] += 1

        return hook

    def snapshot(self):
        return dict(self.calls), self.registered

    def close(self):
        nn.Module.register_forward_hook = self._original  # type: ignore[method-assign]
        for handle in self._handles:
            handle.remove()


def _head_modules(nx: NormXLogit):
    # the forward pass (the first block runs once per pass) and the head's first step, which the
    # prediction and every score reading go through (the final norm of an LM head, BERT's pooler or transform)
    modules = {"block": nx.adapter.blocks[0]}
    steps = [step for step in nx.adapter.transform_steps if isinstance(step, nn.Module)]
    if steps:
        modules["head"] = steps[0]
    return modules


@pytest.mark.parametrize("kind", ["classifier", "masked_lm", "causal_lm"])
@pytest.mark.parametrize("target", [None, "fixed"])
def test_one_forward_pass_per_batch_and_no_hook_of_its_own(tmp_path, kind, target, monkeypatch):
    model, tokenizer, texts = _models()[kind]
    fixed = {"classifier": "POSITIVE", "masked_lm": "good", "causal_lm": 7}[kind] if target else None
    mask_id = tokenizer.mask_token_id if kind == "masked_lm" else None
    nx = NormXLogit(model, mask_token_id=mask_id)
    counter = _Counter(model, _head_modules(nx))
    per_batch = []
    real_run = RowExplainer.run

    def run(self, batch):
        # what one bare NormXLogit.attribute call on this batch costs, measured before the dataset's own call
        from captum_normxlogit._utils.padding import pad_batch

        ids, mask = pad_batch([ex.ids for ex in batch], self.pad_id)
        bare_target = None if self.target is None else torch.tensor([ex.target for ex in batch])
        calls0, hooks0 = counter.snapshot()
        self.nx.attribute(ids, target=bare_target, additional_forward_args=(mask,))
        calls1, hooks1 = counter.snapshot()
        rows = real_run(self, batch)
        calls2, hooks2 = counter.snapshot()
        per_batch.append(
            (
                {k: calls1[k] - calls0[k] for k in calls0},
                hooks1 - hooks0,
                {k: calls2[k] - calls1[k] for k in calls1},
                hooks2 - hooks1,
            )
        )
        return rows

    monkeypatch.setattr(RowExplainer, "run", run)
    try:
        attribute_dataset(
            nx, tokenizer, texts, tmp_path / "out", target=fixed, shard_size=5, max_tokens_per_batch=40, progress=False
        )
    finally:
        counter.close()
    assert len(per_batch) > 2
    for bare_calls, bare_hooks, calls, hooks in per_batch:
        assert calls["block"] == 1  # one forward pass per batch
        if fixed is None:  # the prediction is read once, by NormXLogit (the dataset's second reading is gone)
            assert calls == bare_calls, (calls, bare_calls)
        assert hooks == bare_hooks  # the dataset hooks nothing itself


@pytest.mark.parametrize("kind", ["classifier", "masked_lm", "causal_lm"])
def test_rows_are_the_models_own_output_and_the_reference_scores(tmp_path, kind):
    model, tokenizer, texts = _models()[kind]
    mask_id = tokenizer.mask_token_id if kind == "masked_lm" else None
    attribute_dataset(model, tokenizer, texts, tmp_path / "out", shard_size=5, max_tokens_per_batch=40, progress=False)
    frame = pd.read_parquet(tmp_path / "out")
    assert frame["index"].tolist() == list(range(len(texts)))
    for row in frame.itertuples():
        ids = torch.tensor([list(row.input_ids)])
        with torch.no_grad():  # a plain forward pass of the model, one example at a time
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0]
        if kind == "causal_lm":
            logits = logits[-1]
        elif kind == "masked_lm":
            logits = logits[list(row.input_ids).index(mask_id)]
        probs = logits.softmax(-1)
        assert row.predicted == int(probs.argmax()) == row.target
        assert row.prob == pytest.approx(float(probs.max()), rel=1e-4, abs=1e-6)
        ref = reference(model, ids, torch.ones_like(ids), target=int(row.target), mask_token_id=mask_id)
        np.testing.assert_allclose(row.scores, ref.scores[-1][0].numpy(), rtol=1e-4, atol=1e-5)


def test_attribute_with_prediction_equals_attribute_and_the_model_output(tmp_path):
    model, tokenizer = S.classifier(), S.wordpiece()
    nx = NormXLogit(model)
    enc = tokenizer(S.SENTENCES[:4], padding=True, return_tensors="pt")
    extras = (enc.attention_mask,)
    scores, logits = nx.attribute_with_prediction(enc.input_ids, target=2, additional_forward_args=extras)
    torch.testing.assert_close(scores, nx.attribute(enc.input_ids, target=2, additional_forward_args=extras))
    with torch.no_grad():
        torch.testing.assert_close(logits, model(**enc).logits.float())
