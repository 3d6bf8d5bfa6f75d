"""Property-based tests (hypothesis) over random tiny models, batches, paddings, targets, foils and layers.

* NormXLogit equals the independent per-token reference (tests/_reference.py).
* A sentence alone equals the same sentence inside any padded batch; pads are exactly 0.
* State (hooks, training flags, parameters, grad mode, torch's random-number state) is unchanged after every
  call, also after a raised error.
* Every input from a generated space of invalid inputs raises ValueError or TypeError (the package's own error
  types derive from them), raised by the package itself, never a raw IndexError/RuntimeError/AttributeError
  from torch or transformers.

The budget is fixed and deterministic for CI (``derandomize=True``, no example database): set
``NORMXLOGIT_HYPOTHESIS_EXAMPLES`` to search longer locally. The models are the session-cached tiny models
of tests/_support/families.py (built once per family).
"""

from __future__ import annotations

import os
import pathlib
import traceback
from dataclasses import dataclass
from typing import Any, Callable, List, Optional

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import captum_normxlogit
from captum_normxlogit import NormXLogit
from tests._reference import reference
from tests._support.families import LOW_ID, MASK, PAD, SPECS, VOCAB, build, n_layers
from tests._support.hooks import hook_count as _hooks

settings.register_profile(
    "normxlogit-ci",
    deadline=None,
    derandomize=True,
    database=None,
    max_examples=int(os.environ.get("NORMXLOGIT_HYPOTHESIS_EXAMPLES", "25")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=False,
)
BUDGET = settings.get_profile("normxlogit-ci")

# encoders (right padding only), decoders (either side), classifier / regression / masked LM / causal LM heads,
# token types, and ALBERT's shared blocks
FAMILIES = ["bert_cls", "distilbert_cls", "albert_cls", "bert_reg", "bert_mlm", "llama_cls", "gpt2_lm", "llama_lm"]
ATOL, RTOL = 1e-5, 1.3e-6
PACKAGE = pathlib.Path(captum_normxlogit.__file__).resolve().parent


def _outputs(name: str) -> int:
    kind = SPECS[name].kind
    return 3 if kind == "cls" else 1 if kind == "reg" else VOCAB


@dataclass
class Request:
    name: str
    ids: torch.Tensor
    mask: torch.Tensor
    token_type_ids: Optional[torch.Tensor]
    target: Any
    foil: Any
    layer: int
    train: bool
    grad: bool

    @property
    def model(self):
        return build(self.name)

    @property
    def extras(self):
        return (self.mask,) if self.token_type_ids is None else (self.mask, self.token_type_ids)

    def nx(self, **kwargs) -> NormXLogit:
        return NormXLogit(self.model, layer=self.layer, mask_token_id=MASK, **kwargs)


@st.composite
def requests(draw, families=tuple(FAMILIES)) -> Request:
    name = draw(st.sampled_from(families))
    spec = SPECS[name]
    mlm = spec.kind == "mlm"
    lengths = draw(st.lists(st.integers(2 if mlm else 1, 6), min_size=1, max_size=3))
    left = draw(st.booleans()) if spec.decoder else False
    width = max(lengths) + draw(st.integers(0, 1))  # sometimes every row is padded
    B = len(lengths)
    ids = torch.full((B, width), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    types = torch.zeros_like(ids) if spec.token_types and draw(st.booleans()) else None
    for b, n in enumerate(lengths):
        start = width - n if left else 0
        ids[b, start : start + n] = torch.tensor(draw(st.lists(st.integers(LOW_ID, VOCAB - 1), min_size=n, max_size=n)))
        mask[b, start : start + n] = 1
        if mlm:
            ids[b, start + draw(st.integers(0, n - 1))] = MASK
        if types is not None:
            types[b, start + draw(st.integers(0, n)) : start + n] = 1
    outputs = _outputs(name)
    target: Any = None
    foil: Any = None
    if spec.kind != "reg":
        target = draw(
            st.one_of(
                st.none(), st.integers(0, outputs - 1), st.lists(st.integers(0, outputs - 1), min_size=B, max_size=B)
            )
        )
        foil = draw(st.one_of(st.none(), st.integers(0, outputs - 1)))
    layer = draw(st.integers(0, n_layers(build(name))))
    return Request(name, ids, mask, types, target, foil, layer, draw(st.booleans()), draw(st.booleans()))


# ----------------------------------------------------------------------------- state
class _State:
    """Hooks, training flags, parameters (by value), grad mode and RNG state, to compare before/after."""

    def __init__(self, model):
        self.model = model
        self.hooks = _hooks(model)
        self.modes = [m.training for m in model.modules()]
        self.params = {k: v.clone() for k, v in model.state_dict().items()}
        self.grad = torch.is_grad_enabled()
        self.rng = torch.get_rng_state()

    def assert_unchanged(self):
        model = self.model
        assert torch.equal(torch.get_rng_state(), self.rng), "random numbers were drawn"
        assert _hooks(model) == self.hooks, "a hook was left on the model"
        assert [m.training for m in model.modules()] == self.modes, "a training flag changed"
        assert torch.is_grad_enabled() == self.grad, "grad mode changed"
        now = model.state_dict()
        assert all(torch.equal(v, now[k]) for k, v in self.params.items()), "a parameter or buffer changed"


def _within(request: Request, call: Callable[[], Any]):
    """Run ``call`` in the request's grad mode and training mode; check the state after, then restore eval."""
    model = request.model
    model.train(request.train)
    try:
        with torch.set_grad_enabled(request.grad):
            state = _State(model)
            try:
                return call()
            finally:
                state.assert_unchanged()
    finally:
        model.eval()  # the cached models are shared with other tests


# ----------------------------------------------------------------------------- properties of valid requests
def _reference_scores(request: Request) -> torch.Tensor:
    model, layer = request.model, request.layer
    ref = reference(
        model,
        request.ids,
        request.mask,
        request.token_type_ids,
        target=request.target,
        mask_token_id=MASK,
        layers=[layer],
    )
    scores = ref.scores[layer]
    if request.foil is not None:
        scores = (
            scores
            - reference(
                model,
                request.ids,
                request.mask,
                request.token_type_ids,
                target=request.foil,
                mask_token_id=MASK,
                layers=[layer],
            ).scores[layer]
        )
    return scores


@BUDGET
@given(requests())
def test_normxlogit_equals_the_reference(request):
    got = _within(
        request,
        lambda: request.nx().attribute(
            request.ids, target=request.target, additional_forward_args=request.extras, foil=request.foil
        ),
    )
    torch.testing.assert_close(got, _reference_scores(request), atol=ATOL, rtol=RTOL)
    assert got.dtype == torch.float32 and not got.requires_grad


@BUDGET
@given(requests())
def test_a_sentence_alone_equals_the_sentence_inside_a_padded_batch_and_pads_are_zero(request):
    in_batch = _within(
        request,
        lambda: request.nx().attribute_all_layers(
            request.ids, target=request.target, additional_forward_args=request.extras, foil=request.foil
        ),
    )
    pads = (request.mask == 0).unsqueeze(1).expand_as(in_batch)
    assert bool((in_batch[pads] == 0).all()), "a pad score is not exactly 0"
    nx = request.nx()
    for b in range(request.ids.shape[0]):
        real = request.mask[b].bool()
        alone_ids = request.ids[b, real][None]
        extras = (
            None
            if request.token_type_ids is None
            else (torch.ones_like(alone_ids), request.token_type_ids[b, real][None])
        )
        target = request.target[b] if isinstance(request.target, list) else request.target
        alone = nx.attribute_all_layers(alone_ids, target=target, additional_forward_args=extras, foil=request.foil)
        torch.testing.assert_close(in_batch[b][:, real], alone[0], atol=ATOL, rtol=RTOL)


# ----------------------------------------------------------------------------- invalid requests
def _replace(t: torch.Tensor, b: int, i: int, value) -> torch.Tensor:
    out = t.clone()
    out[b, i] = value
    return out


def _first_real(r: Request) -> tuple[int, int]:
    b = r.ids.shape[0] - 1
    return b, int(r.mask[b].nonzero()[0])


def _embeds(r: Request) -> torch.Tensor:
    return r.model.get_input_embeddings()(r.ids).detach()


# (name, which families it applies to, call(request) -> anything): every call must raise ValueError / TypeError
INVALID: List[tuple] = [
    (
        "mask value 2",
        None,
        lambda r: r.nx().attribute(r.ids, additional_forward_args=(_replace(r.mask, *_first_real(r), 2),)),
    ),
    (
        "mask value -1",
        None,
        lambda r: r.nx().attribute(r.ids, additional_forward_args=(_replace(r.mask, *_first_real(r), -1),)),
    ),
    (
        "float mask 0.5",
        None,
        lambda r: r.nx().attribute(r.ids, additional_forward_args=(_replace(r.mask.float(), *_first_real(r), 0.5),)),
    ),
    (
        "float mask NaN",
        None,
        lambda r: r.nx().attribute(
            r.ids, additional_forward_args=(_replace(r.mask.float(), *_first_real(r), float("nan")),)
        ),
    ),
    ("mask too short", None, lambda r: r.nx().attribute(r.ids, additional_forward_args=(r.mask[:, :-1],))),
    ("mask 3-D", None, lambda r: r.nx().attribute(r.ids, additional_forward_args=(r.mask[..., None],))),
    ("mask as list", None, lambda r: r.nx().attribute(r.ids, additional_forward_args=(r.mask.tolist(),))),
    ("mask row all 0", None, lambda r: r.nx().attribute(r.ids, additional_forward_args=(_zero_row(r.mask),))),
    ("mask on meta", None, lambda r: r.nx().attribute(r.ids, additional_forward_args=(r.mask.to("meta"),))),
    ("three extras", None, lambda r: r.nx().attribute(r.ids, additional_forward_args=(r.mask, None, r.mask))),
    (
        "float token types",
        "types",
        lambda r: r.nx().attribute(r.ids, additional_forward_args=(r.mask, r.mask.float() * 0.5)),
    ),
    ("bool token types", "types", lambda r: r.nx().attribute(r.ids, additional_forward_args=(r.mask, r.mask.bool()))),
    ("token type 2", "types", lambda r: r.nx().attribute(r.ids, additional_forward_args=(r.mask, r.mask * 2))),
    ("token type -1", "types", lambda r: r.nx().attribute(r.ids, additional_forward_args=(r.mask, -r.mask))),
    ("token types short", "types", lambda r: r.nx().attribute(r.ids, additional_forward_args=(r.mask, r.mask[:, 1:]))),
    (
        "id = vocab",
        None,
        lambda r: r.nx().attribute(_replace(r.ids, *_first_real(r), VOCAB), additional_forward_args=(r.mask,)),
    ),
    (
        "id -1",
        None,
        lambda r: r.nx().attribute(_replace(r.ids, *_first_real(r), -1), additional_forward_args=(r.mask,)),
    ),
    ("ids 1-D", None, lambda r: r.nx().attribute(r.ids[0])),
    ("ids 3-D", None, lambda r: r.nx().attribute(r.ids[..., None])),
    ("ids int8", None, lambda r: r.nx().attribute(r.ids.to(torch.int8))),
    ("ids bool", None, lambda r: r.nx().attribute(r.ids.bool())),
    ("ids as list", None, lambda r: r.nx().attribute(r.ids.tolist())),
    ("ids on meta", None, lambda r: r.nx().attribute(r.ids.to("meta"))),
    ("empty sequence", None, lambda r: r.nx().attribute(r.ids[:, :0])),
    ("empty batch", None, lambda r: r.nx().attribute(r.ids[:0])),
    ("two inputs", None, lambda r: r.nx().attribute((r.ids, r.ids))),
    ("embeds wrong width", None, lambda r: r.nx().attribute(_embeds(r)[..., :-1])),
    ("embeds float64", None, lambda r: r.nx().attribute(_embeds(r).double(), additional_forward_args=(r.mask,))),
    ("embeds on meta", None, lambda r: r.nx().attribute(_embeds(r).to("meta"))),
    ("embeds 4-D", None, lambda r: r.nx().attribute(_embeds(r)[None])),
    ("too long", "absolute", lambda r: r.nx().attribute(LOW_ID + torch.arange(80)[None] % (VOCAB - LOW_ID))),
    (
        "target = outputs",
        "classes",
        lambda r: r.nx().attribute(r.ids, target=_outputs(r.name), additional_forward_args=r.extras),
    ),
    ("target -1", "classes", lambda r: r.nx().attribute(r.ids, target=-1, additional_forward_args=r.extras)),
    (
        "target float",
        "classes",
        lambda r: r.nx().attribute(r.ids, target=torch.zeros(r.ids.shape[0]), additional_forward_args=r.extras),
    ),
    ("target bool", "classes", lambda r: r.nx().attribute(r.ids, target=True, additional_forward_args=r.extras)),
    ("target str", "classes", lambda r: r.nx().attribute(r.ids, target="0", additional_forward_args=r.extras)),
    (
        "target too many",
        "classes",
        lambda r: r.nx().attribute(r.ids, target=[0] * (r.ids.shape[0] + 1), additional_forward_args=r.extras),
    ),
    (
        "target 2-D",
        "classes",
        lambda r: r.nx().attribute(
            r.ids, target=torch.zeros(r.ids.shape[0], 2, dtype=torch.long), additional_forward_args=r.extras
        ),
    ),
    ("target tuple", "classes", lambda r: r.nx().attribute(r.ids, target=(0, 1), additional_forward_args=r.extras)),
    (
        "foil = outputs",
        "classes",
        lambda r: r.nx().attribute(r.ids, foil=_outputs(r.name), additional_forward_args=r.extras),
    ),
    ("foil float", "classes", lambda r: r.nx().attribute(r.ids, foil=0.5, additional_forward_args=r.extras)),
    ("regression target", "reg", lambda r: r.nx().attribute(r.ids, target=0, additional_forward_args=r.extras)),
    ("regression foil", "reg", lambda r: r.nx().attribute(r.ids, foil=0, additional_forward_args=r.extras)),
    ("layer -1", None, lambda r: NormXLogit(r.model, layer=-1)),
    ("layer L+1", None, lambda r: NormXLogit(r.model, layer=n_layers(r.model) + 1)),
    ("layer float", None, lambda r: NormXLogit(r.model, layer=1.0)),  # type: ignore[arg-type]  # the bad input
    ("layer bool", None, lambda r: NormXLogit(r.model, layer=True)),
    ("layer empty list", None, lambda r: NormXLogit(r.model, layer=[])),
    ("layer not a block", None, lambda r: NormXLogit(r.model, layer=r.model.get_input_embeddings())),
    (
        "layer input without a block",
        None,
        lambda r: NormXLogit(r.model).attribute(r.ids, attribute_to_layer_input=True),
    ),
    ("input of layer 0", None, lambda r: NormXLogit(r.model, layer=0).attribute(r.ids, attribute_to_layer_input=True)),
    (
        "left padding in an encoder",
        "encoder",
        lambda r: r.nx().attribute(_left(r.ids), additional_forward_args=(_left(_with_pad(r.mask)),)),
    ),
    (
        "no [MASK]",
        "mlm",
        lambda r: r.nx().attribute(torch.where(r.ids == MASK, LOW_ID, r.ids), additional_forward_args=(r.mask,)),
    ),
    (
        "two [MASK]",
        "mlm",
        lambda r: r.nx().attribute(_replace(r.ids, 0, 0, MASK).index_fill(1, torch.tensor([1]), MASK)),
    ),
    ("no mask_token_id", "mlm", lambda r: NormXLogit(r.model).attribute(r.ids, additional_forward_args=(r.mask,))),
    ("forward_func mask 2", None, lambda r: r.nx().forward_func(r.ids, r.mask * 2)),
    ("forward_func id = vocab", None, lambda r: r.nx().forward_func(r.ids + VOCAB, r.mask)),
    ("forward_func float token types", "types", lambda r: r.nx().forward_func(r.ids, r.mask, r.mask.float())),
    (
        "all layers, mask 0.5",
        None,
        lambda r: r.nx().attribute_all_layers(r.ids, additional_forward_args=(r.mask * 0.5,)),
    ),
    ("embedding_norm, id -1", None, lambda r: r.nx().embedding_norm(r.ids - VOCAB)),
]


def _zero_row(mask):
    out = mask.clone()
    out[0] = 0
    return out


def _with_pad(mask):
    out = mask.clone()
    out[0, -1] = 0  # at least one padded row
    return out


def _left(t):
    return t.flip(-1)


def _applies(where: Optional[str], name: str) -> bool:
    spec = SPECS[name]
    return {
        None: True,
        "types": spec.token_types,
        "absolute": name in ("bert_cls", "distilbert_cls", "albert_cls", "bert_reg", "bert_mlm", "gpt2_lm"),
        "classes": spec.kind != "reg",
        "reg": spec.kind == "reg",
        "encoder": not spec.decoder,
        "mlm": spec.kind == "mlm",
    }[where]


@pytest.mark.parametrize("kind", INVALID, ids=[m[0] for m in INVALID])
@settings(parent=BUDGET, max_examples=max(2, BUDGET.max_examples // 8))
@given(data=st.data())
def test_every_invalid_input_raises_a_value_or_type_error_from_the_package(kind, data):
    name, where, call = kind
    request = data.draw(requests(families=tuple(f for f in FAMILIES if _applies(where, f))))
    with pytest.raises((ValueError, TypeError)) as info:
        _within(request, lambda: call(request))
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert pathlib.Path(frame.filename).resolve().is_relative_to(PACKAGE), (
        f"{name}: {type(info.value).__name__} raised by {frame.filename}:{frame.lineno}, not by the package: "
        f"{info.value}"
    )
    assert len(str(info.value)) > 20, f"{name}: the message is not a sentence: {info.value!r}"
