"""The shared method registry: each method checked against an independent computation."""

import pytest
import torch
from captum.attr import IntegratedGradients

from captum_normxlogit import NormXLogit
from captum_normxlogit.methods import (
    METHOD_KEYS,
    CaptumMethod,
    NormXLogitMethod,
    RandomMethod,
    build_method,
    default_methods,
    keep_specials_baseline,
    parse_method_keys,
)
from tests._support.tiny import PAD, batch, bert_classifier, llama_lm

CLS, SEP = 1, 2


@pytest.fixture()
def data():
    ids, mask = batch()
    ids[:, 0] = CLS
    for b, n in enumerate(mask.sum(-1).tolist()):
        ids[b, n - 1] = SEP
    return ids, mask, torch.tensor([0, 2, 1])


def _grad_wrt_embeds(model, ids, mask, target):
    """Plain autograd, no Captum: d logit[target] / d inputs_embeds, and the embeds."""
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    logits = model(inputs_embeds=embeds, attention_mask=mask).logits
    logits.gather(1, target[:, None]).sum().backward()
    return embeds.grad, embeds.detach()


def test_normxlogit_variants_match_the_formula(bert, data):
    ids, mask, target = data
    with torch.no_grad():
        out = bert(ids, attention_mask=mask, output_hidden_states=True)
        pooled = bert.bert.pooler.activation(bert.bert.pooler.dense(out.hidden_states[-1]))
        logat = bert.classifier(pooled).gather(2, target[:, None, None].expand(-1, ids.shape[1], 1))[..., 0]
        norm = out.hidden_states[0].norm(dim=-1)
    nx = NormXLogit(bert)
    m = mask.bool()
    for key, expected in (("normxlogit", norm * logat), ("logat", logat), ("norm", norm)):
        got = build_method(key, nx)(ids, mask, target)
        torch.testing.assert_close(got[m], expected[m], rtol=1e-5, atol=1e-5)
        assert (got[~m] == 0).all()


def test_target_ids_map_classes_to_head_rows():
    lm = llama_lm()
    ids, mask = batch(left=True)
    nx = NormXLogit(lm)
    label_words = [11, 42]
    got = NormXLogitMethod(nx, target_ids=label_words)(ids, mask, torch.tensor([1, 0, 1]))
    expected = nx.attribute(ids, target=torch.tensor([42, 11, 42]), additional_forward_args=(mask,))
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="outside"):
        NormXLogitMethod(nx, target_ids=label_words)(ids, mask, torch.tensor([2, 0, 1]))


def test_gradient_methods_match_plain_autograd(bert, data):
    ids, mask, target = data
    grad, embeds = _grad_wrt_embeds(bert, ids, mask, target)
    nx = NormXLogit(bert)
    m = mask.bool()
    saliency = build_method("saliency", nx)(ids, mask, target)
    torch.testing.assert_close(saliency[m], grad.abs().sum(-1)[m], rtol=1e-4, atol=1e-6)
    ixg = build_method("inputxgradient", nx, reduction="sum")(ids, mask, target)
    torch.testing.assert_close(ixg[m], (grad * embeds).sum(-1)[m], rtol=1e-4, atol=1e-6)
    ixg_l2 = build_method("inputxgradient", nx, reduction="l2")(ids, mask, target)
    torch.testing.assert_close(ixg_l2[m], (grad * embeds).norm(dim=-1)[m], rtol=1e-4, atol=1e-6)


def test_integrated_gradients_are_complete(bert, data):
    """Completeness: signed IG scores sum to f(x) - f(baseline); an independent property of IG."""
    ids, mask, target = data
    nx = NormXLogit(bert)
    with torch.no_grad():
        f_x = bert(ids, attention_mask=mask).logits.gather(1, target[:, None])[:, 0]
        zero = torch.zeros(*ids.shape, bert.config.hidden_size)
        f_zero = bert(inputs_embeds=zero, attention_mask=mask).logits.gather(1, target[:, None])[:, 0]
        base_ids = keep_specials_baseline(ids, mask, PAD, (CLS, SEP))
        f_pad = bert(base_ids, attention_mask=mask).logits.gather(1, target[:, None])[:, 0]
    ig = build_method("ig", nx, reduction="sum", ig_steps=300)(ids, mask, target)
    torch.testing.assert_close(ig.sum(-1), f_x - f_zero, rtol=0, atol=2e-3)
    lig = build_method("layer_ig", nx, reduction="sum", ig_steps=300, pad_token_id=PAD, special_token_ids=(CLS, SEP))
    torch.testing.assert_close(lig(ids, mask, target).sum(-1), f_x - f_pad, rtol=0, atol=2e-3)


def test_keep_specials_baseline_by_hand():
    ids = torch.tensor([[1, 7, 8, 2, 0], [1, 9, 2, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    expected = torch.tensor([[1, 0, 0, 2, 0], [1, 0, 2, 0, 0]])
    assert torch.equal(keep_specials_baseline(ids, mask, PAD, (1, 2)), expected)


def test_random_rows_depend_only_on_the_seed_and_length():
    ids, mask = batch(lengths=(5, 5, 3))
    scores = RandomMethod(seed=3)(ids, mask, torch.zeros(3, dtype=torch.long))
    assert torch.equal(scores[0], scores[1])
    alone = RandomMethod(seed=3)(ids[2:], mask[2:], torch.zeros(1, dtype=torch.long))
    assert torch.equal(scores[2], alone[0])
    assert ((scores >= 0) & (scores < 1)).all()
    assert not torch.equal(scores[0], RandomMethod(seed=4)(ids, mask, torch.zeros(3, dtype=torch.long))[0])


def test_default_methods_cover_every_key_and_leave_the_model_as_found(data):
    model = bert_classifier(dropout=0.3).train()
    ids, mask, target = data
    methods = default_methods(NormXLogit(model), pad_token_id=PAD, special_token_ids=(CLS, SEP), ig_steps=4)
    assert [m.name for m in methods] == [
        "NormXLogit",
        "LogAt",
        "Norm",
        "IntegratedGradients",
        "LayerIntegratedGradients",
        "Saliency",
        "InputXGradient",
        "Random",
    ]
    assert len(methods) == len(METHOD_KEYS)
    for method in methods:
        first = method(ids, mask, target)
        assert first.shape == ids.shape and (first[~mask.bool()] == 0).all()
        # eval mode inside: dropout would make a second call differ
        torch.testing.assert_close(method(ids, mask, target), first)
    assert all(m.training for m in model.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_bad_requests_fail_clearly(bert, data):
    ids, mask, target = data
    nx = NormXLogit(bert)
    with pytest.raises(ValueError, match="Unknown method 'gradcam'"):
        build_method("gradcam", nx)
    with pytest.raises(ValueError, match="needs pad_token_id"):
        build_method("layer_ig", nx)
    with pytest.raises(ValueError, match="zero baseline needs inputs='embeds'"):
        CaptumMethod("x", IntegratedGradients(nx.forward_func), bert, inputs="ids", baselines="zero")
    with pytest.raises(ValueError, match="reduction must be one of"):
        build_method("saliency", nx, reduction="max")
    with pytest.raises(TypeError, match="captum.attr.Attribution"):
        CaptumMethod("x", nx.forward_func, bert)
    with pytest.raises(ValueError, match="one target per example"):
        build_method("normxlogit", nx)(ids, mask, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="attention_mask"):
        build_method("normxlogit", nx)(ids, mask[:, :-1], target)


def test_an_unreduced_custom_method_is_refused(bert, data):
    ids, mask, target = data

    class Unreduced(CaptumMethod):
        def attribute(self, *args):
            return torch.zeros(*ids.shape, 4)

    method = Unreduced("raw", IntegratedGradients(NormXLogit(bert).forward_func), bert)
    with pytest.raises(ValueError, match="give it a reduction"):
        method(ids, mask, target)


def test_method_key_lists_are_parsed_and_checked():
    assert parse_method_keys(" normxlogit, ig ,normxlogit,,saliency") == ["normxlogit", "ig", "saliency"]
    with pytest.raises(ValueError, match=r"unknown \['lime'\]; choose from normxlogit, logat"):
        parse_method_keys("normxlogit,lime")
    with pytest.raises(ValueError, match="unknown empty list"):
        parse_method_keys(" , ")


# ----------------------------------------------------------------------------- the method table
import ast  # noqa: E402
import pathlib  # noqa: E402

from captum.attr import Attribution, LayerIntegratedGradients  # noqa: E402

import captum_normxlogit  # noqa: E402
from captum_normxlogit import methods as table  # noqa: E402
from captum_normxlogit.methods import METHODS, MethodSpec, method_key, method_spec, methods_help  # noqa: E402

PACKAGE = pathlib.Path(captum_normxlogit.__file__).parent
ALL_KEYS = ", ".join(METHOD_KEYS)


def test_every_row_of_the_table_builds_its_method(bert, data):
    ids, mask, target = data
    nx = NormXLogit(bert)
    assert tuple(METHODS) == METHOD_KEYS and len(METHODS) == 8
    for key, spec in METHODS.items():
        assert isinstance(spec, MethodSpec) and spec.key == key == key.lower()
        assert spec.name and spec.short_name and spec.describe() and "{" not in spec.describe()
        method = build_method(key, nx, pad_token_id=PAD, special_token_ids=(CLS, SEP), ig_steps=3)
        assert method.name == spec.name
        scores = method(ids, mask, target)
        assert scores.shape == ids.shape and scores.dtype == torch.float32 and torch.isfinite(scores).all()
        assert spec.build(nx, pad_token_id=PAD, ig_steps=3).name == spec.name
        if spec.captum is not None:  # the display name is Captum's class, not a second spelling of it
            assert issubclass(spec.captum, Attribution) and spec.name == spec.captum.__name__
            assert isinstance(method, CaptumMethod) and isinstance(method.attribution, spec.captum)
    assert METHODS["normxlogit"].name == NormXLogit.get_name()


def test_settings_left_out_come_from_the_table(bert):
    nx = NormXLogit(bert)
    ig = build_method("ig", nx)
    assert isinstance(ig, CaptumMethod)
    assert ig.attribute_kwargs["n_steps"] == METHODS["ig"].defaults["ig_steps"] == 50
    assert ig.reduction == METHODS["ig"].defaults["reduction"] == "l1" and ig.baselines == "zero"
    random_method, ig7 = build_method("random", nx), build_method("ig", nx, ig_steps=7, reduction="sum")
    assert isinstance(random_method, RandomMethod) and isinstance(ig7, CaptumMethod)
    assert random_method.seed == METHODS["random"].defaults["seed"] == 12
    assert ig7.attribute_kwargs["n_steps"] == 7
    assert METHODS["ig"].describe(ig_steps=7).endswith("7 steps")
    with pytest.raises(TypeError):  # the table cannot be changed by accident
        METHODS["ig"] = METHODS["saliency"]  # type: ignore[index]  # the mutation under test
    with pytest.raises(AttributeError):
        METHODS["ig"].name = "IG"  # type: ignore[misc]  # the mutation under test


def test_keys_are_case_insensitive_in_the_library(bert, data):
    ids, mask, target = data
    nx = NormXLogit(bert)
    assert method_key(" IG ") == "ig" and method_spec("Layer_IG") is METHODS["layer_ig"]
    assert parse_method_keys("NormXLogit,IG,ig,RANDOM") == ["normxlogit", "ig", "random"]
    assert parse_method_keys(["Saliency", "saliency"]) == ["saliency"]
    torch.testing.assert_close(
        build_method("NORMXLOGIT", nx)(ids, mask, target), build_method("normxlogit", nx)(ids, mask, target)
    )
    assert NormXLogitMethod(nx, "LogAt").name == "LogAt"
    from captum_normxlogit._commands.evaluate.sentiment import _check_methods

    assert _check_methods(["IG", "Random"]) == ["ig", "random"] and _check_methods(None) == list(METHOD_KEYS)


def test_an_unknown_key_is_one_error_listing_every_key(bert):
    from captum_normxlogit._commands.evaluate.sentiment import _check_methods
    from captum_normxlogit._commands.explain.logic import ExplainError, parse_methods

    nx = NormXLogit(bert)
    for call in (
        lambda: build_method("gradcam", nx),
        lambda: method_key("gradcam"),
        lambda: parse_method_keys("ig,gradcam"),
        lambda: _check_methods(["gradcam"]),
    ):
        with pytest.raises(ValueError, match="gradcam") as info:
            call()
        assert ALL_KEYS in str(info.value) and "case-insensitive" in str(info.value)
    with pytest.raises(ExplainError, match=ALL_KEYS):
        parse_methods("IG,gradcam")


def test_layer_ig_keeps_given_positions_in_its_baseline(bert, data):
    """The prompt-keeping baseline of the SmolLM2 task, against Captum's LayerIntegratedGradients called directly."""
    ids, mask, target = data
    nx = NormXLogit(bert)
    first_two = lambda m: torch.arange(m.shape[1])[None, :].expand_as(m) < 2  # noqa: E731
    method = build_method("layer_ig", nx, pad_token_id=PAD, keep_positions=first_two, ig_steps=4)
    baseline = ids.clone()
    baseline[mask.bool() & ~first_two(mask)] = PAD
    lig = LayerIntegratedGradients(nx.forward_func, bert.get_input_embeddings())
    expected = lig.attribute(ids, baselines=baseline, target=target, additional_forward_args=(mask,), n_steps=4)
    torch.testing.assert_close(method(ids, mask, target), expected.abs().sum(-1) * mask, rtol=1e-4, atol=1e-6)


def test_random_draws_per_item_are_seeded_by_the_item_index():
    scores = RandomMethod(seed=5).item_scores([0, 7], 4)
    torch.testing.assert_close(scores[1], torch.rand(4, generator=torch.Generator().manual_seed(12)))
    torch.testing.assert_close(scores[0], torch.rand(4, generator=torch.Generator().manual_seed(5)))


def test_help_and_docs_list_the_table():
    from captum_normxlogit.cli import main

    for command in ("explain", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
    text = methods_help()
    for spec in METHODS.values():
        assert f"{spec.key}  " in text and spec.describe() in text
    docs = (PACKAGE.parent / "docs" / "evaluation.md").read_text(encoding="utf-8")
    assert table.methods_markdown() in docs, "regenerate the table in docs/evaluation.md with methods_markdown()"


def _string_constants(path: pathlib.Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    exported = {
        id(constant)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
        for constant in ast.walk(node.value)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings | exported:
            yield node.lineno, node.value


ALLOWED = {
    ("cli.py", "normxlogit"),  # the command's name
    ("_core/normxlogit.py", "NormXLogit"),  # NormXLogit.get_name(), which the table reads
}


def test_no_method_key_or_name_is_spelled_outside_the_table():
    # "norm" alone also names layer norms (_models/auto.py), so the bare key is not searched for.
    spelled = {spec.name for spec in METHODS.values()} | {k for k in METHOD_KEYS if k != "norm"}
    spelled |= {spec.short_name for spec in METHODS.values()}
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "methods.py" and path.parent == PACKAGE:
            continue
        relative = path.relative_to(PACKAGE).as_posix()
        for line, value in _string_constants(path):
            if (relative, value) in ALLOWED:
                continue
            # A whole constant (a key, a dict key, a comparison, a comma-separated default), not prose:
            # "NormXLogit" is also the product's name in sentences.
            hits = spelled & {part.strip() for part in value.split(",")}
            if hits:
                found.append(f"{relative}:{line}: {sorted(hits)}")
    assert not found, "read these from captum_normxlogit.methods.METHODS:\n" + "\n".join(found)


def test_runner_up_contrast_is_target_minus_the_most_probable_other_class(bert, data):
    # What ContrastiveNormXLogit (dataset/method_frame.py) computed, now a setting of the table's normxlogit row.
    from tests._reference import reference

    ids, mask, target = data
    method = build_method("normxlogit", NormXLogit(bert), contrast="runner_up")
    assert method.name == "NormXLogit (target − runner-up)" and method.signed
    got = method(ids, mask, target)
    with torch.no_grad():
        logits = bert(input_ids=ids, attention_mask=mask).logits
    foil = [
        max((c for c in range(logits.shape[1]) if c != int(t)), key=lambda c: float(logits[b, c]))
        for b, t in enumerate(target)
    ]
    want = (
        reference(bert, ids, mask, target=target.tolist()).scores[-1]
        - reference(bert, ids, mask, target=foil).scores[-1]
    )
    torch.testing.assert_close(got, want * mask, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("key, kwargs", [("ig", {}), ("norm", {}), ("normxlogit", {"target_ids": [3, 4, 5]})])
def test_a_contrast_where_there_is_no_target_logit_is_refused(bert, key, kwargs):
    with pytest.raises(ValueError, match="contrast"):
        build_method(key, NormXLogit(bert), contrast="runner_up", **kwargs)
    with pytest.raises(ValueError, match="contrast must be None or one of"):
        build_method("normxlogit", NormXLogit(bert), contrast="second")
