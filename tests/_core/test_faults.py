"""Fault injection: an exception inside any block or the head, and KeyboardInterrupt at any point of a call.

After every fault: no hook of the package is left on the model, every training flag is restored, grad mode
is restored, the per-model lock is free (another thread can take it), and the next call gives the result of
a clean run. "Any point" is made concrete two ways: at a module forward call the attribution makes, and at
the entry of a function of the package it calls (``sys.settrace`` call events, which include each
resumption of the package's context managers, so also their clean-up).

CI interrupts at ``NORMXLOGIT_FAULT_POINTS`` (default 12) points spread evenly over each call, first and
last included; ``NORMXLOGIT_FAULT_POINTS=all`` interrupts at every one (see docs/reliability.md).
"""

from __future__ import annotations

import os
import pathlib
import sys
import threading
from typing import Any, Callable, List

import pytest
import torch
from torch import nn

import captum_normxlogit
from captum_normxlogit import LLMNormXLogit, NormXLogit
from captum_normxlogit._utils.capture import model_lock
from tests._support.hooks import hook_count as _hooks
from tests._support.tiny import batch, bert_classifier, llama_lm

PACKAGE = str(pathlib.Path(captum_normxlogit.__file__).resolve().parent)
POINTS = os.environ.get("NORMXLOGIT_FAULT_POINTS", "12")


def _points(n: int):
    """The injection points 1..n to try: all of them, or POINTS spread evenly (first and last included)."""
    if POINTS == "all" or n <= int(POINTS):
        return range(1, n + 1)
    m = int(POINTS)
    return sorted({1 + round(i * (n - 1) / (m - 1)) for i in range(m)})


class Boom(RuntimeError):
    pass


def _lock_is_free(model: nn.Module) -> bool:
    got: List[bool] = []

    def take():
        lock = model_lock(model)
        if lock.acquire(timeout=5):
            lock.release()
            got.append(True)

    t = threading.Thread(target=take)
    t.start()
    t.join()
    return got == [True]


def _assert_clean(model: nn.Module, modes: List[bool], grad: bool) -> None:
    assert _hooks(model) == 0, "a hook was left on the model"
    assert [m.training for m in model.modules()] == modes, "training flags not restored"
    assert torch.is_grad_enabled() == grad, "grad mode not restored"
    assert _lock_is_free(model), "the model's lock is still held"


def _bert_calls():
    """A classifier in training mode (dropout 0.5: a missed restore or a leaked switch would show)."""
    model = bert_classifier(dropout=0.5)
    ids, mask = batch(lengths=(4, 2))
    calls = {
        "attribute": lambda: NormXLogit(model, layer=[0, 2]).attribute(ids, target=1, additional_forward_args=(mask,)),
        "attribute_all_layers": lambda: NormXLogit(model).attribute_all_layers(ids, additional_forward_args=(mask,)),
        # forward_func keeps the model's mode (dropout on): seeded, so two clean runs agree
        "forward_func": lambda: (torch.manual_seed(0), NormXLogit(model).forward_func(ids, mask))[1],
        "embedding_norm": lambda: NormXLogit(model).embedding_norm(ids, additional_forward_args=(mask,)),
    }
    return model, calls


def _llama_calls(tokenizer):
    model = llama_lm()
    ids, mask = batch(lengths=(4, 2), left=True)
    llm = LLMNormXLogit(model, tokenizer)
    calls = {
        "attribute": lambda: NormXLogit(model, layer=1).attribute(ids, foil=3, additional_forward_args=(mask,)),
        "llm_teacher_forced": lambda: llm.attribute_batch(["w12 w40 w7", "w5 w6"], targets=[[17, 54], [9]]),
        "llm_generated": lambda: llm.attribute("w12 w40", gen_args={"max_new_tokens": 2, "do_sample": False}),
        "llm_layers": lambda: llm.attribute_layers("w12 w40", target=[17, 54], layers=[0, 2]),
    }
    return model, calls


def _result(value: Any):
    """A comparable form of any call's result."""
    if isinstance(value, torch.Tensor):
        return [value.detach()]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _result(v)]
    for name in ("token_attr", "scores"):
        if hasattr(value, name):
            return [getattr(value, name)]
    raise TypeError(type(value))


def _same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def _setups(tokenizer):
    return [("bert", *_bert_calls()), ("llama", *_llama_calls(tokenizer))]


# ----------------------------------------------------------------------------- an exception in a block or the head
SITES = {  # the embeddings, every block, and every module of the head
    "bert": ["bert.embeddings", "bert.encoder.layer.0", "bert.encoder.layer.1", "bert.pooler", "classifier"],
    "llama": ["model.embed_tokens", "model.layers.0", "model.layers.1", "model.norm", "lm_head"],
}


@pytest.mark.parametrize("which", ["bert", "llama"])
def test_an_exception_inside_any_block_or_the_head_leaves_the_model_clean(which, tokenizer):
    model, calls = _bert_calls() if which == "bert" else _llama_calls(tokenizer)
    modules = dict(model.named_modules())
    first = next(iter(calls))
    expected = _result(calls[first]())
    modes = [m.training for m in model.modules()]
    for site in SITES[which]:

        def boom(*args, site=site):  # bound now: the hook must name this iteration's site
            raise Boom(site)

        raised = 0
        for call in calls.values():
            handle = modules[site].register_forward_hook(boom)
            try:
                call()
            except Boom as error:
                assert str(error) == site  # the user's own exception, unchanged
                raised += 1
            finally:
                handle.remove()
            _assert_clean(model, modes, grad=True)
        assert raised, f"no call reached {site}"
        assert _same(_result(calls[first]()), expected), f"{first} after a fault at {site} differs"


# ----------------------------------------------------------------------------- KeyboardInterrupt at any point
class _InterruptAtModuleCall:
    """A forward pre-hook on every submodule that raises KeyboardInterrupt at the ``k``-th module call."""

    def __init__(self, model: nn.Module, k: int):
        self.k, self.n = k, 0
        self.handles = [m.register_forward_pre_hook(self) for m in model.modules()]

    def __call__(self, *args):
        self.n += 1
        if self.n == self.k:
            raise KeyboardInterrupt

    def remove(self):
        for handle in self.handles:
            handle.remove()


class _InterruptAtPackageCall:
    """``sys.settrace``: raise KeyboardInterrupt on the ``k``-th call event in the package's code."""

    def __init__(self, k: int):
        self.k, self.n = k, 0

    def __call__(self, frame, event, arg):
        # generator expressions are skipped: an interrupt raised while one is finalised is unraisable (Python
        # prints and drops it), and one inside it is the same point as the call of the function around it
        code = frame.f_code
        if event == "call" and code.co_filename.startswith(PACKAGE) and code.co_name != "<genexpr>":
            self.n += 1
            if self.n == self.k:
                raise KeyboardInterrupt  # the trace function is unset by CPython after this
        return None


def _count_module_calls(model, call) -> int:
    counter = _InterruptAtModuleCall(model, k=-1)
    try:
        call()
    finally:
        counter.remove()
    return counter.n


def _count_package_calls(call) -> int:
    counter = _InterruptAtPackageCall(k=-1)
    sys.settrace(counter)
    try:
        call()
    finally:
        sys.settrace(None)
    return counter.n


def _interrupted(run: Callable[[], Any]) -> bool:
    try:
        run()
    except KeyboardInterrupt:
        return True
    return False


@pytest.mark.parametrize("which", ["bert", "llama"])
def test_keyboard_interrupt_at_module_calls_leaves_the_model_clean(which, tokenizer):
    model, calls = _bert_calls() if which == "bert" else _llama_calls(tokenizer)
    modes = [m.training for m in model.modules()]
    for name, call in calls.items():
        expected = _result(call())
        n = _count_module_calls(model, call)
        assert n > 3
        for k in _points(n):
            injector = _InterruptAtModuleCall(model, k)
            try:
                assert _interrupted(call), f"{name}: no interrupt at module call {k}"
            finally:
                injector.remove()
            _assert_clean(model, modes, grad=True)
        assert _same(_result(call()), expected)


@pytest.mark.parametrize("which", ["bert", "llama"])
def test_keyboard_interrupt_at_package_function_calls_leaves_the_model_clean(which, tokenizer):
    model, calls = _bert_calls() if which == "bert" else _llama_calls(tokenizer)
    modes = [m.training for m in model.modules()]
    for name, call in calls.items():
        expected = _result(call())
        n = _count_package_calls(call)
        assert n > 10, n
        for k in _points(n):
            injector = _InterruptAtPackageCall(k)
            sys.settrace(injector)
            try:
                hit = _interrupted(call)
            finally:
                sys.settrace(None)
            assert hit, f"{name}: no interrupt at package call {k} of {n}"
            _assert_clean(model, modes, grad=True)
        assert _same(_result(call()), expected)


def test_a_fault_inside_the_pass_restores_grad_mode_whatever_it_was():
    model = bert_classifier()
    ids, mask = batch()
    handle = model.bert.encoder.layer[1].register_forward_hook(lambda *a: (_ for _ in ()).throw(Boom("x")))
    try:
        for grad in (True, False):
            with torch.set_grad_enabled(grad):
                with pytest.raises(Boom):
                    NormXLogit(model).attribute(ids, additional_forward_args=(mask,))
                assert torch.is_grad_enabled() == grad
                with pytest.raises(Boom):  # forward_func keeps the caller's grad mode (gradient methods need it)
                    NormXLogit(model).forward_func(ids, mask)
                assert torch.is_grad_enabled() == grad
    finally:
        handle.remove()
    assert _hooks(model) == 0 and _lock_is_free(model)
