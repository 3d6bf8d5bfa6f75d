"""Concurrent use of one model: attributions in several threads equal the serial ones, and the model's
own forward passes in other threads are not affected by an attribution in progress.

The guarantees are stated in docs/reliability.md ("Threads"); each test below is named there.
"""

from __future__ import annotations

import threading
from typing import Callable, List

import pytest
import torch

from captum_normxlogit import LLMNormXLogit, NormXLogit
from tests._support.hooks import hook_count as _hook_count
from tests._support.tiny import VOCAB, batch, bert_classifier, llama_lm

N_THREADS = 4
ROUNDS = 8


def _run_threads(jobs: List[Callable[[], None]]) -> List[BaseException]:
    """Start every job at once (a barrier) and return what they raised."""
    barrier = threading.Barrier(len(jobs))
    errors: List[BaseException] = []

    def wrap(job):
        def run():
            try:
                barrier.wait()
                job()
            except BaseException as error:  # noqa: BLE001 - reported to the test
                errors.append(error)

        return run

    threads = [threading.Thread(target=wrap(job)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread did not finish (deadlock?)"
    return errors


@pytest.mark.parametrize("which", ["bert", "llama"])
def test_concurrent_attributions_equal_the_serial_ones(which):
    model = bert_classifier() if which == "bert" else llama_lm()
    inputs = [batch(lengths=(7, 4, 6), seed=s, left=which == "llama") for s in range(N_THREADS)]
    serial = [
        (
            NormXLogit(model).attribute(ids, additional_forward_args=(mask,)),
            NormXLogit(model).attribute_all_layers(ids, additional_forward_args=(mask,)),
            NormXLogit(model, layer=1).attribute(ids, target=1, additional_forward_args=(mask,)),
        )
        for ids, mask in inputs
    ]
    shared = NormXLogit(model)  # one instance shared by threads, and fresh instances: one lock per model
    mismatches: List[int] = []

    def worker(k):
        def job():
            ids, mask = inputs[k]
            for _ in range(ROUNDS):
                got = (
                    shared.attribute(ids, additional_forward_args=(mask,)),
                    NormXLogit(model).attribute_all_layers(ids, additional_forward_args=(mask,)),
                    NormXLogit(model, layer=1).attribute(ids, target=1, additional_forward_args=(mask,)),
                )
                if not all(torch.equal(g, s) for g, s in zip(got, serial[k])):
                    mismatches.append(k)

        return job

    errors = _run_threads([worker(k) for k in range(N_THREADS)])
    assert not errors, errors
    assert not mismatches
    assert _hook_count(model) == 0 and not any(m.training for m in model.modules())


def test_a_forward_pass_in_another_thread_is_not_affected():
    model = llama_lm()
    ids, mask = batch(left=True)
    other_ids = torch.randint(5, VOCAB, (2, 9), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        plain_serial = model(other_ids).logits
    scores_serial = NormXLogit(model).attribute_all_layers(ids, additional_forward_args=(mask,))
    bad: List[str] = []

    def attributing():
        nx = NormXLogit(model)
        for _ in range(ROUNDS * 2):
            if not torch.equal(nx.attribute_all_layers(ids, additional_forward_args=(mask,)), scores_serial):
                bad.append("attribution")

    def plain():
        for _ in range(ROUNDS * 2):
            with torch.no_grad():
                if not torch.equal(model(other_ids).logits, plain_serial):
                    bad.append("plain forward")

    errors = _run_threads([attributing, plain, attributing, plain])
    assert not errors, errors
    assert not bad
    assert _hook_count(model) == 0


def test_concurrent_attributions_of_a_model_in_training_mode_equal_eval_mode():
    model = bert_classifier(dropout=0.5)
    inputs = [batch(seed=s) for s in range(N_THREADS)]
    expected = [NormXLogit(model).attribute_all_layers(ids, additional_forward_args=(mask,)) for ids, mask in inputs]
    model.train()
    mismatches: List[int] = []

    def worker(k):
        def job():
            ids, mask = inputs[k]
            for _ in range(ROUNDS):
                if not torch.equal(
                    NormXLogit(model).attribute_all_layers(ids, additional_forward_args=(mask,)), expected[k]
                ):
                    mismatches.append(k)

        return job

    errors = _run_threads([worker(k) for k in range(N_THREADS)])
    assert not errors, errors
    assert not mismatches
    assert all(m.training for m in model.modules()), "training flags restored"
    assert _hook_count(model) == 0


def test_concurrent_llm_attributions_and_generations_equal_the_serial_ones(tokenizer):
    model = llama_lm()
    llm = LLMNormXLogit(model, tokenizer)
    prompts = ["w12 w40 w7 w33", "w5 w6 w7 w8 w9", "w90 w80 w70", "w41 w42"]
    gen_args = {"max_new_tokens": 3, "do_sample": False}
    serial_forced = [llm.attribute(p, target=[17, 54, 9]).token_attr for p in prompts]
    serial_generated = [llm.attribute(p, gen_args=gen_args) for p in prompts]
    mismatches: List[int] = []

    def worker(k):
        def job():
            for _ in range(ROUNDS // 3):
                forced = llm.attribute(prompts[k], target=[17, 54, 9]).token_attr
                generated = LLMNormXLogit(model, tokenizer).attribute(prompts[k], gen_args=gen_args)
                if not (
                    torch.equal(forced, serial_forced[k])
                    and generated.output_tokens == serial_generated[k].output_tokens
                    and torch.equal(generated.token_attr, serial_generated[k].token_attr)
                ):
                    mismatches.append(k)

        return job

    errors = _run_threads([worker(k) for k in range(len(prompts))])
    assert not errors, errors
    assert not mismatches
    assert _hook_count(model) == 0


def test_forward_func_in_threads_with_gradients_equals_serial():
    # forward_func is what gradient methods call: it hooks the model too, and must not see other threads' passes
    model = llama_lm()
    nx = NormXLogit(model)
    inputs = [batch(left=True, seed=s) for s in range(N_THREADS)]
    serial = []
    for ids, mask in inputs:
        embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
        out = nx.forward_func(embeds, mask)
        (grad,) = torch.autograd.grad(out[:, 3].sum(), embeds)
        serial.append((out.detach(), grad))
    mismatches: List[int] = []

    def worker(k):
        def job():
            ids, mask = inputs[k]
            for _ in range(ROUNDS):
                embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
                out = nx.forward_func(embeds, mask)
                (grad,) = torch.autograd.grad(out[:, 3].sum(), embeds)
                if not (torch.equal(out.detach(), serial[k][0]) and torch.equal(grad, serial[k][1])):
                    mismatches.append(k)

        return job

    errors = _run_threads([worker(k) for k in range(N_THREADS)])
    assert not errors, errors
    assert not mismatches
    assert _hook_count(model) == 0
