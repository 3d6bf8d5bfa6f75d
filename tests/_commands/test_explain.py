"""`normxlogit explain`: tiny saved models of the three kinds, checked against independent computations."""

import re
import subprocess
import sys

import pytest
import torch
import transformers as T
from captum.attr import IntegratedGradients

from captum_normxlogit.cli import COMMANDS, main
from tests._reference import reference
from tests._support.saved import LABELS, SMALL, cli_bert_config, cli_bytelevel, cli_wordpiece, save

TEXT = "a gorgeous , unbelievably witty movie ."
PLAIN = re.compile(r"(\S+?)\[([+-]\d\.\d\d)\]")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    classifier = T.BertForSequenceClassification(cli_bert_config(id2label=LABELS)).eval()
    masked = T.BertForMaskedLM(cli_bert_config()).eval()
    bpe = cli_bytelevel()
    llama = T.LlamaConfig(vocab_size=len(bpe), num_key_value_heads=2, pad_token_id=0, **SMALL)
    causal = T.LlamaForCausalLM(llama).eval()
    base = T.BertModel(cli_bert_config()).eval()
    return {
        "classifier": (save(root / "cls", classifier, cli_wordpiece()), classifier),
        "masked": (save(root / "mlm", masked, cli_wordpiece()), masked),
        "causal": (save(root / "clm", causal, bpe), causal),
        "base": (save(root / "base", base, cli_wordpiece()), base),
    }


def _explain(capsys, *args):
    """Run the command in-process; returns (exit code, stdout, stderr)."""
    try:
        code = main(["explain", *args, "--colour", "never"])
    except SystemExit as stop:
        code = stop.code  # type: ignore[assignment]  # main exits with an int code
    out = capsys.readouterr()
    return code, out.out, out.err


def _row(stdout: str, method: str):
    line = next(row for row in stdout.splitlines() if row.strip().startswith(method))
    pairs = PLAIN.findall(line)
    return [t for t, _ in pairs], torch.tensor([float(v) for _, v in pairs])


def test_help_lists_every_command_and_version_works(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    out = capsys.readouterr().out
    # argparse puts a long command's help on the next line (check-model), hence \s rather than a space
    listed = all(re.search(rf"^    {re.escape(name)}\s", out, re.M) for name in COMMANDS)
    assert stop.value.code == 0 and listed and "explain" in COMMANDS
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    out = capsys.readouterr().out
    options = ("--model", "--target", "--methods", "--layers", "--html", "--png", "--truncate", "--words", "--timings")
    for option in options:
        assert option in out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert re.search(r"normxlogit \d+\.\d+", capsys.readouterr().out)


def test_classifier_rows_match_independent_computations(saved, capsys, tmp_path):
    folder, model = saved["classifier"]
    page, png = tmp_path / "out" / "page.html", tmp_path / "layers.png"
    code, out, _ = _explain(
        capsys,
        TEXT,
        "--model",
        folder,
        "--target",
        "positive",
        "--methods",
        "normxlogit,ig",
        "--ig-steps",
        "8",
        "--html",
        str(page),
        "--png",
        str(png),
        "--layers",
    )
    assert code == 0, out
    tokenizer = cli_wordpiece()
    enc = tokenizer(TEXT, return_tensors="pt")
    ids = enc["input_ids"]
    # NormXLogit row: the authors' per-token loop, scaled by its max |score|, target POSITIVE (index 2).
    expected = reference(model, ids, torch.ones_like(ids), target=2).scores[-1][0]
    tokens, shown = _row(out, "NormXLogit")
    assert tokens == tokenizer.convert_ids_to_tokens(ids[0])
    torch.testing.assert_close(shown, expected / expected.abs().max(), atol=0.006, rtol=0)
    # IG row: Captum's IntegratedGradients on the HF model itself, zero embedding baseline, summed.
    embeds = model.get_input_embeddings()(ids).detach()
    ig = IntegratedGradients(lambda e: model(inputs_embeds=e).logits).attribute(embeds, target=2, n_steps=8).sum(-1)[0]
    torch.testing.assert_close(_row(out, "IntegratedGradients")[1], ig / ig.abs().max(), atol=0.006, rtol=0)
    # The prediction line names the argmax label and its probability.
    with torch.no_grad():
        probs = model(ids).logits.softmax(-1)[0]
    assert f"{LABELS[int(probs.argmax())]} (p={float(probs.max()):.3f})" in out
    assert f"explaining POSITIVE (p={float(probs[2]):.3f})" in out
    # Layer rows 0..L share one scale: the last one equals NormXLogit up to that common divisor.
    layers = reference(model, ids, torch.ones_like(ids), target=2).scores
    everything = torch.stack(layers)
    top = everything.abs().max()
    torch.testing.assert_close(_row(out, "layer 0 embeddings")[1], layers[0][0] / top, atol=0.006, rtol=0)
    torch.testing.assert_close(_row(out, "layer 2 last")[1], layers[2][0] / top, atol=0.006, rtol=0)
    text = page.read_text(encoding="utf-8")
    assert all(name in text for name in ("NormXLogit", "IntegratedGradients", "gorgeous", "##bel", "layer 1"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_words_merge_subwords_with_summed_scores(saved, capsys):
    folder, model = saved["classifier"]
    code, out, _ = _explain(capsys, TEXT, "--model", folder, "--methods", "normxlogit", "--words")
    assert code == 0
    ids = cli_wordpiece()(TEXT, return_tensors="pt")["input_ids"]
    raw = reference(model, ids, torch.ones_like(ids)).scores[-1][0]
    # tokens: [CLS] a gorgeous , un ##bel ##ie ##va ##bly witty movie . [SEP]; "un..bly" is one word
    words = torch.cat([raw[:4], raw[4:9].sum(0, keepdim=True), raw[9:]])
    tokens, shown = _row(out, "NormXLogit")
    assert tokens == ["[CLS]", "a", "gorgeous", ",", "unbelievably", "witty", "movie", ".", "[SEP]"]
    torch.testing.assert_close(shown, words / words.abs().max(), atol=0.006, rtol=0)


def test_method_keys_are_case_insensitive(saved, capsys):
    folder, _ = saved["classifier"]
    lower = _explain(capsys, TEXT, "--model", folder, "--methods", "normxlogit,saliency")
    mixed = _explain(capsys, TEXT, "--model", folder, "--methods", "NormXLogit,SALIENCY")
    assert lower[0] == mixed[0] == 0 and lower[1] == mixed[1]
    assert _row(mixed[1], "NormXLogit")[0] and _row(mixed[1], "Saliency")[0]


def test_masked_lm_explains_the_token_at_the_mask(saved, capsys):
    folder, model = saved["masked"]
    code, out, _ = _explain(capsys, "a [MASK] movie .", "--model", folder, "--methods", "normxlogit,saliency")
    assert code == 0, out
    tokenizer = cli_wordpiece()
    ids = tokenizer("a [MASK] movie .", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits[0, 2]
    predicted = int(logits.argmax())
    assert f"mask → {tokenizer.decode([predicted])!r}" in out
    expected = reference(model, ids, torch.ones_like(ids), mask_token_id=4).scores[-1][0]
    torch.testing.assert_close(_row(out, "NormXLogit")[1], expected / expected.abs().max(), atol=0.006, rtol=0)
    assert "Saliency (unsigned)" in out


def test_causal_lm_explains_the_next_token(saved, capsys):
    folder, model = saved["causal"]
    prompt = "The capital of France is"
    code, out, _ = _explain(capsys, prompt, "--model", folder, "--methods", "normxlogit", "--target", " Paris")
    assert code == 0, out
    tokenizer = cli_bytelevel()
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    paris = tokenizer.encode(" Paris")[0]
    expected = reference(model, ids, torch.ones_like(ids), target=paris).scores[-1][0]
    tokens, shown = _row(out, "NormXLogit")
    assert tokens == ["The", "capital", "of", "France", "is"]  # byte-level Ġ decoded
    torch.testing.assert_close(shown, expected / expected.abs().max(), atol=0.006, rtol=0)
    with torch.no_grad():
        predicted = int(model(ids).logits[0, -1].argmax())
    assert f"next token {tokenizer.decode([predicted])!r}" in out and "explaining ' Paris'" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--target", "GREAT"], "NEGATIVE, NEUTRAL, POSITIVE"),
        (["--methods", "normxlogit,lime"], "choose from normxlogit"),
        (["--model", "/no/such/folder"], "no such directory"),
        (["--model", "{tmp}"], "no config.json"),
        (["--model", "{base}"], "*ForSequenceClassification"),
        (["--model", "{masked}"], "contain '[MASK]' exactly once"),
        (["--model", "{causal}", "--target", "Paris France"], "must be exactly one token"),
        (["--html", "{tmp}"], "is a directory"),
    ],
)
def test_bad_requests_fail_clearly_and_write_nothing(saved, capsys, tmp_path, args, message):
    paths = {"tmp": str(tmp_path), "base": saved["base"][0], "masked": saved["masked"][0], "causal": saved["causal"][0]}
    args = [a.format(**paths) for a in args]
    if "--model" not in args:
        args += ["--model", saved["classifier"][0]]
    page = tmp_path / "never.html"
    html_args = [] if "--html" in args else ["--html", str(page)]
    code, out, err = _explain(capsys, "a movie .", *args, *html_args)
    assert code == 2 and message in err, err
    assert not page.exists()


def test_long_text_is_refused_or_truncated_with_a_warning(saved, capsys):
    folder, model = saved["classifier"]
    long_text = " ".join(["a gorgeous movie ."] * 10)  # 42 tokens with [CLS]/[SEP]; the model takes 24
    code, _, err = _explain(capsys, long_text, "--model", folder, "--methods", "normxlogit")
    assert code == 2 and "42 tokens" in err and "at most 24" in err and "--truncate" in err
    code, out, err = _explain(capsys, long_text, "--model", folder, "--methods", "normxlogit", "--truncate")
    assert code == 0 and "explaining the first 24" in err
    tokens, _ = _row(out, "NormXLogit")
    assert len(tokens) == 24 and tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"


@pytest.mark.real
def test_explain_on_the_default_model_and_smollm2(tmp_path):
    page = tmp_path / "explain.html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "captum_normxlogit.cli",
            "explain",
            "a gorgeous , witty , seductive movie .",
            "--html",
            str(page),
            "--ig-steps",
            "8",
            "--colour",
            "never",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "POSITIVE (p=" in result.stdout and "gorgeous[" in result.stdout and "seductive[" in result.stdout
    text = page.read_text(encoding="utf-8")
    assert "NormXLogit" in text and "IntegratedGradients" in text and "seductive" in text

    from captum_normxlogit.resources import smollm2_dir

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "captum_normxlogit.cli",
            "explain",
            "The capital of France is",
            "--model",
            str(smollm2_dir()),
            "--methods",
            "normxlogit",
            "--colour",
            "never",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "next token ' Paris'" in result.stdout and "France[" in result.stdout


def test_a_refused_model_gets_the_one_line_reason_check_model_prints(tmp_path, capsys, monkeypatch):
    from captum_normxlogit import UnsupportedModelError, check_model
    from captum_normxlogit._models import registry

    bpe = cli_bytelevel()
    torch.manual_seed(0)
    granite = T.GraniteForCausalLM(
        T.GraniteConfig(vocab_size=len(bpe), num_key_value_heads=2, pad_token_id=0, logits_scaling=4.0, **SMALL)
    ).eval()
    folder = save(tmp_path / "granite", granite, bpe)
    monkeypatch.delitem(registry._BY_MODEL_TYPE, "granite")  # only the automatic adapter is left, and it refuses
    reason = check_model(granite, repeats=1).reason
    capsys.readouterr()  # drop transformers' saving bars
    code, out, err = _explain(capsys, "The capital of France is", "--model", folder)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0] and "check-model" in lines[0]
    with pytest.raises(UnsupportedModelError):  # the recipe is still in the Python error
        from captum_normxlogit import NormXLogit

        NormXLogit(granite)
