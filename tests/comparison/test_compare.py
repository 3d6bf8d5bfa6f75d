"""compare(): every method on the same data, metrics, time and memory, and the written report."""

import sys
from typing import Any

import pandas as pd
import pytest
import torch
from captum.attr import LayerIntegratedGradients, Saliency

import captum_normxlogit
from captum_normxlogit import NormXLogit
from captum_normxlogit._commands.evaluate.sentiment import LabelWordClassifier
from captum_normxlogit.comparison import ComparisonResult, compare
from captum_normxlogit.methods import METHOD_KEYS, AttributionMethod
from tests._support.tiny import PAD, batch, bert_classifier, llama_lm

CLS, MASK, A, B, C, D = 1, 2, 3, 4, 5, 6
# The bag of words of tests/metrics/test_faithfulness.py: odds of class 1 per token.
ODDS = torch.ones(99, dtype=torch.float64)
ODDS[CLS], ODDS[A], ODDS[B], ODDS[C], ODDS[D] = 2.0, 3.0, 2.0, 1.0, 1 / 3


def bag_of_words(ids, mask):
    s = (ODDS.log()[ids] * mask).sum(-1)
    return torch.stack([torch.zeros_like(s), s], -1)


class Fixed(AttributionMethod):
    """Scores given per token id, whatever the target."""

    def __init__(self, name, by_id):
        self.name, self.by_id = name, by_id

    def attribute(self, input_ids, attention_mask, target):
        return torch.tensor([[self.by_id.get(int(i), 0.0) for i in row] for row in input_ids])


@pytest.fixture(scope="module")
def bert():
    return bert_classifier(num_labels=2)


def _toy(bert, **kw):
    # [CLS] a b c d (p = .8) and [CLS] b d + pads (odds 4/3, p = 4/7); both predicted class 1
    ids = torch.tensor([[CLS, A, B, C, D], [CLS, B, D, PAD, PAD]])
    mask = (ids != PAD).long()
    methods = [
        Fixed("good", {CLS: 100.0, A: 4.0, B: 3.0, C: 2.0, D: 1.0}),
        Fixed("reversed", {CLS: 100.0, A: 1.0, B: 2.0, C: 3.0, D: 4.0}),
    ]
    return compare(
        NormXLogit(bert),
        ids,
        mask,
        forward_func=bag_of_words,
        methods=methods,
        special_token_ids=(CLS,),
        removal=MASK,
        labels=torch.tensor([1, 0]),
        batch_size=1,
        progress=False,
        **kw,
    )


def test_table_holds_hand_computed_aopc(bert):
    result = _toy(bert)
    assert list(result.table["method"]) == ["good", "reversed"]
    good = result.table.set_index("method").loc["good"]
    # example 0 (see test_faithfulness): comprehensiveness drops at 10..90 % average 244/945.
    # example 1, len 3: int(3 K) = 0,0,0,1,1,1,2,2,2 at 10..90 %; ranking b > d:
    # removing b -> odds 2/3 (p .4), drop 4/7 - .4 = 6/35; removing b, d -> odds 2 (p 2/3), drop 4/7 - 2/3 = -2/21
    example1 = (3 * 6 / 35 + 3 * (-2 / 21)) / 9
    assert good["comp_aopc"] == pytest.approx((244 / 945 + example1) / 2)
    # accuracy against labels (1, 0): example 0 right at 5 of the 9 ratios; example 1's prediction
    # (class 1 while p > 1/2: 4/7 yes, .4 no, 2/3 yes) is wrong whenever it says class 1 -> right 3 of 9 times
    assert good["comp_acc_aopc"] == pytest.approx((5 / 9 + 3 / 9) / 2)
    # ERASER bins for example 0: drops 0, 0, 0, 8/35, .4; example 1: int(3 K) = 0, 0, 0, 0, 1 -> 0,0,0,0,6/35
    assert good["eraser_comp_aopc"] == pytest.approx(((8 / 35 + 0.4) / 5 + (6 / 35) / 5) / 2)
    reverse = result.table.set_index("method").loc["reversed"]
    assert good["suff_aopc"] < reverse["suff_aopc"] and good["comp_aopc"] > reverse["comp_aopc"]
    assert result.settings["model_accuracy"] == pytest.approx(0.5)
    curve = result.curves.query("method == 'good' and protocol == 'paper' and kind == 'comprehensiveness'")
    assert list(curve["ratio"]) == pytest.approx([k / 10 for k in range(11)])
    assert curve["prob_drop"].iloc[0] == 0.0


def test_time_and_memory_are_reported(bert):
    table = _toy(bert).table
    assert (table["seconds"] >= 0).all() and (table["ms_per_example"] >= 0).all()
    assert not table["peak_mib"].isna().any() and (table["peak_mib"] >= 0).all()


def test_all_default_methods_run_on_one_model(bert, capsys):
    ids, mask = batch(lengths=(7, 4, 6, 5), seed=2)
    ids[:, 0] = CLS
    result = compare(
        NormXLogit(bert),
        ids,
        mask,
        special_token_ids=(CLS,),
        removal=MASK,
        pad_token_id=PAD,
        labels=torch.tensor([0, 1, 1, 0]),
        ig_steps=2,
        batch_size=3,
    )
    names = [
        "NormXLogit",
        "LogAt",
        "Norm",
        "IntegratedGradients",
        "LayerIntegratedGradients",
        "Saliency",
        "InputXGradient",
        "Random",
    ]
    assert list(result.table["method"]) == names and len(METHOD_KEYS) == len(names)
    assert not result.table.drop(columns="method").isna().any().any()
    assert set(result.curves["protocol"]) == {"paper", "eraser"}
    err = capsys.readouterr().err
    assert "NormXLogit" in err and "faithfulness metrics" in err  # tqdm bars


def test_any_captum_attribution_can_be_added(bert):
    ids, mask = batch(lengths=(6, 4), seed=4)
    nx = NormXLogit(bert)
    lig = LayerIntegratedGradients(nx.forward_func, bert.get_input_embeddings())
    result = compare(
        nx,
        ids,
        mask,
        methods=["normxlogit", Saliency(nx.forward_func), lig],
        special_token_ids=(),
        removal=MASK,
        progress=False,
    )
    assert list(result.table["method"]) == ["NormXLogit", "Saliency", "Layer Integrated Gradients"]
    with pytest.raises(TypeError, match="methods must hold"):
        compare(nx, ids, mask, methods=[object()], special_token_ids=(), removal=MASK, progress=False)
    with pytest.raises(ValueError, match="unique"):
        compare(nx, ids, mask, methods=["random", "random"], special_token_ids=(), removal=MASK, progress=False)


def test_write_and_plot(bert, tmp_path):
    result = _toy(bert)
    paths = result.write(tmp_path / "out", stem="toy")
    assert [p.name for p in paths] == ["toy.csv", "toy_curves.csv", "toy.md", "toy.png"]
    pd.testing.assert_frame_equal(pd.read_csv(paths[0]), result.table, check_dtype=False)
    assert len(pd.read_csv(paths[1])) == len(result.curves)
    text = paths[2].read_text(encoding="utf-8")
    assert "| good |" in text and "![comprehensiveness and sufficiency curves](toy.png)" in text
    assert paths[3].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)  # no leftovers


def test_write_refuses_a_file_and_leaves_nothing_half_written(bert, tmp_path, monkeypatch):
    result = _toy(bert)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        result.write(blocker)
    module = sys.modules["captum_normxlogit.comparison.result"]

    def broken(*args, **kwargs):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(module, "curves_figure", broken)
    with pytest.raises(RuntimeError, match="plot failed"):
        result.write(tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_bad_input_is_refused(bert):
    ids, mask = batch(lengths=(5, 3), seed=1)
    nx = NormXLogit(bert)
    kw: dict[str, Any] = dict(special_token_ids=(), removal=MASK, methods=["random"], progress=False)
    with pytest.raises(ValueError, match="right-padded"):
        compare(nx, ids, mask.flip(-1), **kw)
    with pytest.raises(ValueError, match="labels must hold one entry per example"):
        compare(nx, ids, mask, labels=torch.tensor([1]), **kw)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        compare(nx, ids, mask, batch_size=0, **kw)
    with pytest.raises(TypeError, match="NormXLogit"):
        compare(bert, ids, mask, **kw)


def test_compare_is_exported():
    assert captum_normxlogit.compare is compare and "compare" in captum_normxlogit.__all__
    assert "Returns:" in (compare.__doc__ or "") and "Returns:" in (ComparisonResult.write.__doc__ or "")


class WordTokenizer:
    """A stand-in tokenizer: one id per whitespace-separated word, ' '-prefixed words as in BPE."""

    def __init__(self):
        self.vocab = {}

    def __call__(self, text, add_special_tokens=False):
        pieces = text.replace("\n", " \n ").split(" ")
        ids = [self.vocab.setdefault(p, 10 + len(self.vocab)) for p in pieces if p]
        return {"input_ids": ids}


def test_label_word_classifier_reads_the_label_rows_after_the_prompt():
    lm = llama_lm()
    tok = WordTokenizer()
    clf = LabelWordClassifier(lm, tok, prompt=("Review:", "\nSentiment:"), label_words=("bad", "good"))
    ids, mask, prompt = clf.encode(["a fine film", "dull"], pad_token_id=PAD)
    # Review: | a fine film | \n Sentiment:  -> prompt at 0 and the last two real slots
    assert mask.sum(-1).tolist() == [6, 4]
    assert prompt.tolist() == [[True, False, False, False, True, True], [True, False, True, True, False, False]]
    logits = clf.forward(ids, mask)
    with torch.no_grad():
        for b, n in enumerate(mask.sum(-1).tolist()):
            alone = lm(ids[b : b + 1, :n]).logits[0, -1, list(clf.label_ids)]
            torch.testing.assert_close(logits[b], alone, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="not single tokens"):
        LabelWordClassifier(lm, tok, label_words=("very bad", "good"))


def test_comparison_is_a_package_and_compare_the_function():
    import importlib
    import types

    package = importlib.import_module("captum_normxlogit.comparison")
    assert isinstance(package, types.ModuleType) and package.__all__ == ["ComparisonResult", "compare"]
    assert package.compare is captum_normxlogit.compare is compare and callable(compare)
    assert package.ComparisonResult is captum_normxlogit.ComparisonResult is ComparisonResult
    for name in ("ComparisonResult", "LLMLayerAttributionResult"):  # result types users receive
        assert name in captum_normxlogit.__all__
    assert all(hasattr(captum_normxlogit, name) for name in captum_normxlogit.__all__)


def test_method_keys_are_case_insensitive_and_unknown_ones_list_every_key(bert):
    ids, mask = batch(lengths=(5, 3), seed=1)
    nx = NormXLogit(bert)
    kw: dict[str, Any] = dict(special_token_ids=(), removal=MASK, progress=False)
    result = compare(nx, ids, mask, methods=["Random", "NORMXLOGIT"], **kw)
    assert list(result.table["method"]) == ["Random", "NormXLogit"]
    with pytest.raises(ValueError, match="Unknown method 'GradCAM'; choose from " + ", ".join(METHOD_KEYS)):
        compare(nx, ids, mask, methods=["GradCAM"], **kw)
