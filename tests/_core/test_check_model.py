"""`captum_normxlogit.check_model(model)` and `normxlogit check-model DIR` (captum_normxlogit/_core/check.py,
captum_normxlogit/_commands/check_model/command.py).

The report's timings are printed for the user, never asserted on (speed lives in benchmarks/).
"""

from __future__ import annotations

import math

import pytest
import torch
import transformers as T
from torch import nn

from captum_normxlogit import NormXLogit, UnsupportedModelError, check_model
from captum_normxlogit._models import registry
from captum_normxlogit.cli import main
from tests._support.families import build


def _olmo(seed: int = 0):
    torch.manual_seed(seed)
    return T.OlmoForCausalLM(
        T.OlmoConfig(
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=3,
            num_attention_heads=4,
            intermediate_size=37,
            pad_token_id=0,
        )
    ).eval()


def _granite(seed: int = 0):
    torch.manual_seed(seed)
    return T.GraniteForCausalLM(
        T.GraniteConfig(
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=37,
            logits_scaling=4.0,
            pad_token_id=0,
        )
    ).eval()


def _finite_positive(x) -> bool:
    return x is not None and x > 0 and math.isfinite(x)


def test_a_registered_family_is_reported_with_both_checks_and_its_cost():
    report = check_model(build("bert_cls"), repeats=2)
    assert report.supported and report.support == "registered family" and report.reason == ""
    assert (report.task, report.n_layers) == ("sequence_classification", 2)
    assert report.hidden is not None and report.logits is not None
    assert report.hidden.passed and report.logits.passed
    assert report.hidden.max_diff <= report.hidden.tolerance and report.logits.max_diff <= report.logits.tolerance
    assert report.probe_shape == (2, 6)
    for seconds in (
        report.verify_seconds,
        report.verify_warm_seconds,
        report.forward_seconds,
        report.normxlogit_seconds,
    ):
        assert _finite_positive(seconds)
    text = report.format()
    for part in (
        "BertForSequenceClassification",
        "registered family",
        "hidden-states check passed",
        "head-logits check passed",
        "NormXLogit.attribute",
        "bare forward",
        "2 x 6 tokens",
    ):
        assert part in text


def test_an_unregistered_family_is_reported_as_the_verified_automatic_adapter():
    report = check_model(_olmo(), repeats=1)
    assert report.support == "verified automatic adapter"
    assert (report.task, report.n_layers) == ("causal_lm", 3)
    assert report.hidden is not None and report.logits is not None
    assert report.hidden.passed and report.logits.passed


def test_a_refused_model_reports_the_failed_check_and_the_same_reason_normxlogit_raises(monkeypatch):
    monkeypatch.delitem(registry._BY_MODEL_TYPE, "granite")
    model = _granite()
    report = check_model(model, repeats=1)
    assert not report.supported and report.support == "refused"
    assert "head-logits check" in report.reason and "largest difference" in report.reason
    assert report.hidden is not None and report.logits is not None
    assert report.hidden.passed and not report.logits.passed and report.logits.max_diff > report.logits.tolerance
    assert report.forward_seconds is None  # nothing is timed for a refused model
    with pytest.raises(UnsupportedModelError) as info:
        NormXLogit(model)
    assert info.value.reason == report.reason  # explain prints this same first line (ExplainError(str(error)))


def test_a_registered_family_that_refuses_a_configuration_says_why():
    torch.manual_seed(0)
    model = T.ModernBertForSequenceClassification(
        T.ModernBertConfig(  # type: ignore[call-arg]  # num_labels
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            cls_token_id=1,
            sep_token_id=2,
            num_labels=3,
            classifier_pooling="mean",
        )
    ).eval()
    report = check_model(model, repeats=1)
    assert report.support == "refused" and "classifier_pooling='mean'" in report.reason


def test_a_non_hugging_face_model_is_refused_with_a_reason():
    report = check_model(nn.Linear(3, 3))
    assert report.support == "refused" and "config.model_type" in report.reason


# ----------------------------------------------------------------------------- the command
def test_check_model_command_on_a_saved_unregistered_model(tmp_path, capsys):
    _olmo().save_pretrained(tmp_path / "olmo")
    assert main(["check-model", str(tmp_path / "olmo"), "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for part in (
        "OlmoForCausalLM",
        "verified automatic adapter",
        "causal_lm, 3 layers",
        "hidden-states check passed",
        "head-logits check passed",
        "NormXLogit.attribute",
    ):
        assert part in out


def test_check_model_command_on_a_refused_model_exits_1_with_the_reason(tmp_path, capsys, monkeypatch):
    _granite().save_pretrained(tmp_path / "granite")
    monkeypatch.delitem(registry._BY_MODEL_TYPE, "granite")
    assert main(["check-model", str(tmp_path / "granite"), "--repeats", "1"]) == 1
    captured = capsys.readouterr()
    assert "support: refused" in captured.out
    assert (
        "refused: NormXLogit does not know GraniteForCausalLM" in captured.err and "head-logits check" in captured.err
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["check-model", "no/such/folder"], "no such directory"),
        (["check-model", ".", "--repeats", "0"], "at least 1"),
    ],
)
def test_check_model_command_bad_arguments(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_check_model_command_on_a_folder_without_config(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["check-model", str(tmp_path)])
    assert info.value.code == 2 and "config.json" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_timing_line_prints_a_ratio_only_from_repeated_medians():
    model = build("bert_cls")
    once = check_model(model, repeats=1)
    assert once.repeats == 1
    line = [t for t in once.format().splitlines() if "on the probe" in t][0]
    assert "x;" not in line and "x)" not in line and "too few for a ratio" in line and "--repeats 3" in line
    probe = [t for t in once.format().splitlines() if "verification took" in t][0]
    assert "a bare forward pass" not in probe  # the warm verification's ratio is one too
    thrice = check_model(model, repeats=3)
    nx_s, forward_s, warm_s = thrice.normxlogit_seconds, thrice.forward_seconds, thrice.verify_warm_seconds
    assert nx_s is not None and forward_s is not None and warm_s is not None
    ratio = f"{nx_s / forward_s:.2f}x; medians of 3 runs"
    assert ratio in thrice.format()
    warm = f"{warm_s / forward_s:.2f}x a bare forward pass"
    assert warm in thrice.format()
