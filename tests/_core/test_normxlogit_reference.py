"""NormXLogit == an independent per-token re-implementation of the authors' loop (tests/_reference.py).

Every tiny model of tests/_support/families.py (encoder and decoder classifiers, a regressor, masked and causal LMs)
is checked for: final scores, every layer (module form, int form, list form, attribute_all_layers including
index 0), attribute_to_layer_input, LogAt alone, the embedding norm, explicit targets, pads, tuple structure,
the inputs_embeds path, batch invariance, token_type_ids, forward_func, regression, Gemma-2/3 logit
soft-capping and Granite/Cohere logit scaling; and that every registered adapter passes the verification
of NormXLogit(verify=True). float32 throughout, atol 1e-5.

Padding: every model runs every test right-padded; decoders also left-padded. Encoders refuse left
padding (test_encoder_left_padding_is_refused): their classifiers read position 0 and most of them count
absolute positions from the first slot, so left padding changes the model's own output.
"""

from __future__ import annotations

import functools

import pytest
import torch

from captum_normxlogit import NormXLogit
from tests import _reference as R
from tests._support.families import MASK, SPECS, build, make_batch

ATOL = 1e-5
RTOL = 1.3e-6  # torch's default float32 rtol; the absolute tolerance is the binding one here
SIDES = pytest.mark.parametrize("left", [False, True], ids=["right_pad", "left_pad"])


def pytest_generate_tests(metafunc):
    """`name` runs over every tiny model; with `left`, every model gets right padding and decoders also left.

    Encoders with left padding are covered in one place, test_encoder_left_padding_is_refused.
    """
    names = set(metafunc.fixturenames)
    if "name" not in names:
        return
    keep = getattr(metafunc.function, "_only", lambda spec: True)
    models = [n for n in SPECS if keep(SPECS[n])]
    if "left" in names:
        combos = [(n, False) for n in models] + [(n, True) for n in models if SPECS[n].decoder]
        metafunc.parametrize(
            ("name", "left"), combos, ids=[f"{n}-{'left' if is_left else 'right'}_pad" for n, is_left in combos]
        )
    else:
        metafunc.parametrize("name", models)


def only(predicate):
    """Run a per-model test only on the models whose Spec satisfies `predicate`."""

    def mark(fn):
        fn._only = predicate
        return fn

    return mark


@pytest.fixture
def model(name):
    return build(name)  # built once per session (tests/_support/families.py caches it)


@pytest.fixture
def spec(name):
    return SPECS[name]


def close(got, want, msg=""):
    torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL, msg=lambda m: f"{msg}\n{m}")


# ----------------------------------------------------------------------------- cached inputs / references
@functools.lru_cache(maxsize=None)
def batch_of(name: str, left: bool, tt: bool = False):
    return make_batch(left=left, mlm=SPECS[name].kind == "mlm", token_types=tt)


@functools.lru_cache(maxsize=None)
def ref_of(
    name: str, left: bool, tt: bool = False, target=None, softcap: bool = True, scaling: bool = True
) -> R.RefResult:
    bt = batch_of(name, left, tt)
    return R.reference(
        build(name),
        bt.ids,
        bt.mask,
        bt.token_type_ids if tt else None,
        target=None if target is None else (target if isinstance(target, int) else list(target)),
        mask_token_id=MASK,
        softcap=softcap,
        scaling=scaling,
    )


def afa(bt, tt: bool = False):
    return (bt.mask, bt.token_type_ids) if tt else (bt.mask,)


def nx_of(name: str, **kw) -> NormXLogit:
    return NormXLogit(build(name), mask_token_id=MASK if SPECS[name].kind == "mlm" else None, **kw)


def check_scores(got, want, bt, msg):
    assert isinstance(got, torch.Tensor), f"{msg}: expected a tensor, got {type(got)}"
    assert got.dtype == torch.float32, f"{msg}: dtype {got.dtype}"
    assert got.shape == bt.ids.shape, f"{msg}: shape {tuple(got.shape)} != {tuple(bt.ids.shape)}"
    pads = bt.mask == 0
    assert torch.all(got[pads] == 0), f"{msg}: pad positions are not exactly 0: {got[pads]}"
    assert torch.isfinite(got).all(), f"{msg}: non-finite scores"
    close(got, want, msg)


# ----------------------------------------------------------------------------- the reference checks itself
def test_reference_head_reproduces_the_models_own_logits(name, model, spec):
    """The per-token head call on the pooled/predicting position gives back the model's logits exactly."""
    for left in (False, True):
        bt = batch_of(name, left)
        out = R.run(model, bt.ids, bt.mask)
        H = out.hidden_states
        L = len(H) - 1
        assert L == model.config.num_hidden_layers
        for b, (start, stop) in enumerate(bt.spans()):
            if spec.kind in ("cls", "reg"):
                pos = stop - 1 if spec.decoder else 0  # decoders pool the last real token, encoders [CLS]
                got = R.head_on_token(model, H[L][b][pos : pos + 1].unsqueeze(0), last_layer=True)
                torch.testing.assert_close(got, out.logits[b], atol=2e-6, rtol=1e-5)
            else:
                for i in range(start, stop):
                    got = R.head_on_token(model, H[L][b][i : i + 1].unsqueeze(0), last_layer=True)
                    torch.testing.assert_close(got, out.logits[b, i], atol=5e-6, rtol=1e-5)


@only(lambda spec: spec.decoder)
def test_reference_decoder_hidden_state_convention(name, model, spec):
    """transformers 5.x: hidden_states[l] (l < L) is block l's input (pre final norm); hidden_states[L] is post."""
    bt = batch_of(name, True)
    blocks = spec.blocks(model)
    seen = []
    hooks = [
        blk.register_forward_hook(lambda m, a, o: seen.append(o[0] if isinstance(o, tuple) else o)) for blk in blocks
    ]
    try:
        out = R.run(model, bt.ids, bt.mask)
    finally:
        for h in hooks:
            h.remove()
    H, L, real = out.hidden_states, len(blocks), bt.mask.bool()
    for layer in range(1, L):
        torch.testing.assert_close(H[layer][real], seen[layer - 1][real], atol=0, rtol=0)
    with torch.no_grad():
        normed = R._final_norm(model, seen[L - 1])
    torch.testing.assert_close(H[L][real], normed[real], atol=1e-6, rtol=1e-6)


def test_reference_gemma2_softcap_matters():
    plain = ref_of("gemma2_lm", False, softcap=False)
    capped = ref_of("gemma2_lm", False)
    L = len(capped.scores) - 1
    assert (plain.scores[L] - capped.scores[L]).abs().max() > 0.1
    cap = build("gemma2_lm").config.final_logit_softcapping
    assert capped.logat[L].abs().max() < cap
    assert plain.logat[L].abs().max() > capped.logat[L].abs().max()


def test_reference_logit_scaling_matters():
    """Granite divides by logits_scaling, Cohere multiplies by logit_scale: both change the scores here."""
    for name in ("granite_lm", "cohere_lm"):
        plain, scaled = ref_of(name, False, scaling=False), ref_of(name, False)
        L = len(scaled.scores) - 1
        assert (plain.scores[L] - scaled.scores[L]).abs().max() > 0.1, name


# ----------------------------------------------------------------------------- verification
def test_registered_adapter_passes_both_checks(name, model):
    """NormXLogit(verify=True): captured states == output_hidden_states and head == the model's logits."""
    nx = nx_of(name, verify=True)
    assert nx.n_layers == model.config.num_hidden_layers


# ----------------------------------------------------------------------------- final scores
def test_n_layers(name, model):
    assert nx_of(name).n_layers == model.config.num_hidden_layers


def test_final_scores_match_reference(name, left):
    bt, ref = batch_of(name, left), ref_of(name, left)
    got = nx_of(name).attribute(bt.ids, additional_forward_args=afa(bt))
    check_scores(got, ref.scores[-1], bt, f"{name} final, {'left' if left else 'right'} pad")


def test_mask_given_bare_and_default_mask(name):
    """additional_forward_args as a bare mask; and None on an unpadded batch (= all-ones mask)."""
    bt, ref = batch_of(name, False), ref_of(name, False)
    nx = nx_of(name)
    check_scores(nx.attribute(bt.ids, additional_forward_args=bt.mask), ref.scores[-1], bt, "bare mask")
    full = make_batch(lengths=(5, 5), seed=7, mlm=SPECS[name].kind == "mlm")
    want = R.reference(build(name), full.ids, None, mask_token_id=MASK).scores[-1]
    check_scores(nx.attribute(full.ids), want, full, "no mask")


# ----------------------------------------------------------------------------- layers
def test_every_layer_int_form(name, model, left):
    bt, ref = batch_of(name, left), ref_of(name, left)
    for layer in range(1, model.config.num_hidden_layers + 1):
        got = nx_of(name, layer=layer).attribute(bt.ids, additional_forward_args=afa(bt))
        check_scores(got, ref.scores[layer], bt, f"{name} layer={layer}")


@only(lambda spec: spec.blocks is not None)  # ALBERT shares one block module: only the int form is unambiguous
def test_every_layer_module_form(name, model, spec, left):
    bt, ref = batch_of(name, left), ref_of(name, left)
    for k, block in enumerate(spec.blocks(model)):
        got = nx_of(name, layer=block).attribute(bt.ids, additional_forward_args=afa(bt))
        check_scores(got, ref.scores[k + 1], bt, f"{name} block {k}")


def test_layer_list_forms(name, model, spec):
    bt, ref = batch_of(name, False), ref_of(name, False)
    L = model.config.num_hidden_layers
    got = nx_of(name, layer=list(range(1, L + 1))).attribute(bt.ids, additional_forward_args=afa(bt))
    assert isinstance(got, list) and len(got) == L
    for layer, g in zip(range(1, L + 1), got):
        check_scores(g, ref.scores[layer], bt, f"{name} int list, layer {layer}")
    if spec.blocks is not None:
        blocks = spec.blocks(model)
        got = nx_of(name, layer=blocks[::-1]).attribute(bt.ids, additional_forward_args=afa(bt))
        assert isinstance(got, list) and len(got) == L
        for layer, g in zip(range(L, 0, -1), got):
            check_scores(g, ref.scores[layer], bt, f"{name} module list, layer {layer}")


def test_attribute_all_layers(name, model, left):
    bt, ref = batch_of(name, left), ref_of(name, left)
    L = model.config.num_hidden_layers
    got = nx_of(name).attribute_all_layers(bt.ids, additional_forward_args=afa(bt))
    assert isinstance(got, torch.Tensor) and got.shape == (bt.ids.shape[0], L + 1, bt.ids.shape[1])
    for layer in range(L + 1):
        check_scores(got[:, layer], ref.scores[layer], bt, f"{name} all_layers[{layer}]")
    assert (ref.scores[0] - ref.scores[L]).abs().max() > 1e-2, "layers should differ in this test"


def test_attribute_to_layer_input(name, model, spec, left):
    """Block k's input is hidden_states[k]; block 0's input is the embedding output (layer 0)."""
    bt, ref = batch_of(name, left), ref_of(name, left)
    L = model.config.num_hidden_layers
    for layer in range(1, L + 1):  # int form: layer k reads hidden_states[k - 1]
        got = nx_of(name, layer=layer).attribute(bt.ids, additional_forward_args=afa(bt), attribute_to_layer_input=True)
        check_scores(got, ref.scores[layer - 1], bt, f"{name} input of layer {layer}")
    if spec.blocks is not None:
        for k, block in enumerate(spec.blocks(model)):
            got = nx_of(name, layer=block).attribute(
                bt.ids, additional_forward_args=afa(bt), attribute_to_layer_input=True
            )
            check_scores(got, ref.scores[k], bt, f"{name} input of block {k}")


# ----------------------------------------------------------------------------- parts of the formula
def test_logat_alone(name, model, left):
    bt, ref = batch_of(name, left), ref_of(name, left)
    L = model.config.num_hidden_layers
    got = nx_of(name, multiply_by_inputs=False).attribute(bt.ids, additional_forward_args=afa(bt))
    check_scores(got, ref.logat[L], bt, f"{name} LogAt")
    got = nx_of(name, layer=1, multiply_by_inputs=False).attribute(bt.ids, additional_forward_args=afa(bt))
    check_scores(got, ref.logat[1], bt, f"{name} LogAt layer 1")
    assert not torch.allclose(ref.logat[L], ref.scores[L])


def test_embedding_norm(name, left):
    bt, ref = batch_of(name, left), ref_of(name, left)
    got = nx_of(name).embedding_norm(bt.ids, additional_forward_args=afa(bt))
    check_scores(got, ref.norm0, bt, f"{name} embedding_norm")
    assert torch.all(got[bt.mask.bool()] > 0)


@only(lambda spec: spec.kind != "reg")  # regression has no target class
def test_explicit_targets(name, model, spec, left):
    bt = batch_of(name, left)
    n_out = model.config.vocab_size if spec.kind in ("mlm", "clm") else model.config.num_labels
    predicted = ref_of(name, left).targets
    one = (predicted[0] + 1) % n_out
    per_example = tuple((t + 1 + b) % n_out for b, t in enumerate(predicted))
    assert list(per_example) != predicted
    nx = nx_of(name)
    want = ref_of(name, left, target=one).scores[-1]
    check_scores(nx.attribute(bt.ids, target=one, additional_forward_args=afa(bt)), want, bt, "int target")
    want = ref_of(name, left, target=per_example).scores[-1]
    check_scores(
        nx.attribute(bt.ids, target=list(per_example), additional_forward_args=afa(bt)), want, bt, "list target"
    )
    check_scores(
        nx.attribute(bt.ids, target=torch.tensor(per_example), additional_forward_args=afa(bt)),
        want,
        bt,
        "tensor target",
    )
    # explicit target == the prediction gives the target=None result
    want = ref_of(name, left).scores[-1]
    check_scores(
        nx.attribute(bt.ids, target=list(predicted), additional_forward_args=afa(bt)),
        want,
        bt,
        "predicted target given explicitly",
    )


def test_tuple_in_tuple_out(name):
    bt, ref = batch_of(name, False), ref_of(name, False)
    got = nx_of(name).attribute((bt.ids,), additional_forward_args=afa(bt))
    assert isinstance(got, tuple) and len(got) == 1
    check_scores(got[0], ref.scores[-1], bt, "tuple input")
    got = nx_of(name, layer=1).attribute((bt.ids,), additional_forward_args=afa(bt))
    assert isinstance(got, tuple) and len(got) == 1
    check_scores(got[0], ref.scores[1], bt, "tuple input, layer 1")


# ----------------------------------------------------------------------------- inputs_embeds
def test_inputs_embeds_path(name, model, spec, left):
    bt = batch_of(name, left)
    ref_ids = ref_of(name, left)
    with torch.no_grad():
        embeds = model.get_input_embeddings()(bt.ids)
    # a masked LM's prediction cannot be located from embeddings: give the mask position's prediction
    target = ref_ids.targets if spec.kind == "mlm" else None
    nx = nx_of(name)
    got = nx.attribute(embeds, target=target, additional_forward_args=afa(bt))
    # reference on the very same embeddings, target = the model's prediction on the ids
    want = R.reference(
        model,
        None,
        bt.mask,
        inputs_embeds=embeds,
        target=None if spec.kind in ("cls", "reg") and not spec.decoder else ref_ids.targets,
    )
    check_scores(got, want.scores[-1], bt, f"{name} inputs_embeds vs reference on embeds")
    tup = nx.attribute((embeds,), target=target, additional_forward_args=afa(bt))
    assert isinstance(tup, tuple) and len(tup) == 1
    check_scores(tup[0], want.scores[-1], bt, "inputs_embeds tuple")
    got_all = nx.attribute_all_layers(embeds, target=target, additional_forward_args=afa(bt))
    for layer in range(len(want.scores)):
        check_scores(got_all[:, layer], want.scores[layer], bt, f"inputs_embeds all_layers[{layer}]")
    # same as the ids path, including the model's own prediction as the target
    check_scores(got, ref_ids.scores[-1], bt, f"{name} inputs_embeds vs ids")


# ----------------------------------------------------------------------------- batch invariance
def test_batch_invariance(name, spec, left):
    bt = batch_of(name, left)
    nx = nx_of(name)
    batched = nx.attribute(bt.ids, additional_forward_args=afa(bt))
    batched_all = nx.attribute_all_layers(bt.ids, additional_forward_args=afa(bt))
    for b, (start, stop) in enumerate(bt.spans()):
        ids = bt.ids[b : b + 1, start:stop]
        mask = torch.ones_like(ids)
        alone = nx.attribute(ids, additional_forward_args=(mask,))
        close(batched[b : b + 1, start:stop], alone, f"{name} row {b} alone vs in batch")
        alone_all = nx.attribute_all_layers(ids, additional_forward_args=(mask,))
        close(batched_all[b : b + 1, :, start:stop], alone_all, f"{name} row {b} all layers")
        # and the reference agrees with itself on this (sanity for the test, not the implementation)
        ref_alone = R.reference(build(name), ids, mask, mask_token_id=MASK).scores[-1]
        close(alone, ref_alone, f"{name} row {b} alone vs reference")


# ----------------------------------------------------------------------------- token_type_ids
@only(lambda spec: spec.token_types)
def test_sentence_pairs_with_token_type_ids(name, model, spec):
    bt = batch_of(name, False, tt=True)
    ref = ref_of(name, False, tt=True)
    no_tt = R.reference(model, bt.ids, bt.mask, mask_token_id=MASK)
    assert (ref.scores[-1] - no_tt.scores[-1]).abs().max() > 1e-3, "token types should matter in this test"
    nx = nx_of(name)
    got = nx.attribute(bt.ids, additional_forward_args=afa(bt, tt=True))
    check_scores(got, ref.scores[-1], bt, f"{name} with token_type_ids")
    got = nx.attribute_all_layers(bt.ids, additional_forward_args=afa(bt, tt=True))
    for layer in range(len(ref.scores)):
        check_scores(got[:, layer], ref.scores[layer], bt, f"{name} with token_type_ids, layer {layer}")
    got = nx.embedding_norm(bt.ids, additional_forward_args=afa(bt, tt=True))
    check_scores(got, ref.norm0, bt, f"{name} embedding_norm with token_type_ids")


# ----------------------------------------------------------------------------- special cases
def test_regression_uses_distance_to_model_output():
    name, left = "bert_reg", False
    bt, ref = batch_of(name, left), ref_of(name, left)
    model = build(name)
    assert model.config.num_labels == 1
    got = nx_of(name).attribute(bt.ids, additional_forward_args=afa(bt))
    check_scores(got, ref.scores[-1], bt, "regression")
    assert torch.all(got >= 0)
    # the reference really is ||e|| * |HoT(h) - output|: recompute one token by hand
    out = R.run(model, bt.ids, bt.mask)
    b, i = 0, 1
    with torch.no_grad():
        pooled = model.get_submodule("bert.pooler")(out.hidden_states[-1][b][i : i + 1].unsqueeze(0))
        tok = model.get_submodule("classifier")(pooled)[0, 0]
        want = out.hidden_states[0][b, i].norm() * (tok - out.logits[b, 0]).abs()
    torch.testing.assert_close(got[b, i], want, atol=ATOL, rtol=RTOL)
    signed = out.hidden_states[0][b, i].norm() * (tok - out.logits[b, 0])
    if signed < 0:
        assert not torch.allclose(got[b, i], signed)


@SIDES
def test_gemma2_logit_softcapping_applied(left):
    name = "gemma2_lm"
    bt = batch_of(name, left)
    capped, plain = ref_of(name, left), ref_of(name, left, softcap=False)
    L = len(capped.scores) - 1
    nx = nx_of(name)
    got = nx.attribute(bt.ids, additional_forward_args=afa(bt))
    check_scores(got, capped.scores[L], bt, "gemma-2 capped")
    assert (got - plain.scores[L]).abs().max() > 0.1, "soft-capping was not applied"
    got_all = nx.attribute_all_layers(bt.ids, additional_forward_args=afa(bt))
    for layer in range(L + 1):
        check_scores(got_all[:, layer], capped.scores[layer], bt, f"gemma-2 capped layer {layer}")
    logat = NormXLogit(build(name), multiply_by_inputs=False).attribute(bt.ids, additional_forward_args=afa(bt))
    assert logat.abs().max() <= build(name).config.final_logit_softcapping


# ----------------------------------------------------------------------------- forward_func
@only(lambda spec: spec.kind != "mlm")  # forward_func is specified for classifiers and causal LMs
def test_forward_func_logits(name, model, spec, left):
    bt = batch_of(name, left)
    out = R.run(model, bt.ids, bt.mask)
    if spec.kind == "clm":
        want = torch.stack([out.logits[b, stop - 1] for b, (_, stop) in enumerate(bt.spans())])
    else:
        want = out.logits
    nx = nx_of(name)
    got = nx.forward_func(bt.ids, attention_mask=bt.mask)
    close(got.detach(), want, f"{name} forward_func")
    with torch.no_grad():
        embeds = model.get_input_embeddings()(bt.ids)
    got = nx.forward_func(embeds, attention_mask=bt.mask)
    close(got.detach(), want, f"{name} forward_func on inputs_embeds (prediction = last real token)")


# ----------------------------------------------------------------------------- encoders, left padding
@only(lambda spec: not spec.decoder)  # decoders run every test with left padding too
def test_encoder_left_padding_is_refused(name, model, spec):
    """Encoders read position 0 and most count positions from the first slot: left padding is refused."""
    bt = batch_of(name, True)
    nx = nx_of(name)
    for call in (
        lambda: nx.attribute(bt.ids, additional_forward_args=afa(bt)),
        lambda: nx.attribute_all_layers(bt.ids, additional_forward_args=afa(bt)),
        lambda: nx.embedding_norm(bt.ids, additional_forward_args=afa(bt)),
    ):
        with pytest.raises(ValueError, match="right"):
            call()
