"""`normxlogit attribute-dataset`: the written folder, the last line, one-line errors."""

import json

import pandas as pd
import pytest

from captum_normxlogit.cli import main
from tests._support import saved as S


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = root / "data.jsonl"
    data.write_text(
        "".join(json.dumps({"sentence": s, "gold": S.LABELS[i % 3]}) + "\n" for i, s in enumerate(S.SENTENCES))
    )
    return {
        "cls": S.save(root / "cls", S.classifier(), S.wordpiece()),
        "clm": S.save(root / "clm", S.causal_lm(S.bytelevel()), S.bytelevel()),
        "data": str(data),
        "root": root,
    }


def _run(capsys, *args):
    code = main(["attribute-dataset", *args, "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_writes_the_folder_and_says_so(capsys, tmp_path, files):
    out = tmp_path / "out"
    code, stdout, _ = _run(
        capsys,
        files["data"],
        "--model",
        files["cls"],
        "--output",
        str(out),
        "--text-column",
        "sentence",
        "--label-column",
        "gold",
        "--target",
        "column:gold",
        "--layers",
        "all",
        "--shard-size",
        "5",
        "--limit",
        "11",
    )
    assert code == 0
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("wrote 11 rows (0 skipped,") and "3 Parquet shards" in last and str(out) in last
    df = pd.read_parquet(out)
    assert df["index"].tolist() == list(range(11))
    assert df.target_label.tolist() == df.label.tolist() == [S.LABELS[i % 3] for i in range(11)]
    assert len(df.layer_scores[0]) == 3  # hidden states 0..2


def test_causal_lm_continuations(capsys, tmp_path, files):
    data = tmp_path / "lm.jsonl"
    data.write_text(json.dumps({"text": "The capital of France is", "answer": " Paris"}) + "\n")
    code, stdout, _ = _run(
        capsys, str(data), "--model", files["clm"], "--output", str(tmp_path / "o"), "--target", "column:answer"
    )
    assert code == 0, stdout
    row = pd.read_parquet(tmp_path / "o").iloc[0]
    assert row.target_label == " Paris" and len(row.token_attr) == len(row.output_ids)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--text-column", "nope"], "has no column 'nope'"),
        (["--text-column", "sentence", "--target", "MAYBE"], "'MAYBE' is not a class of this model"),
        (["--text-column", "sentence", "--max-tokens-per-batch", "0"], "max_tokens_per_batch must be a positive int"),
    ],
)
def test_bad_requests_fail_in_one_line_and_write_nothing(capsys, tmp_path, files, args, message):
    out = tmp_path / "out"
    code, stdout, stderr = _run(capsys, files["data"], "--model", files["cls"], "--output", str(out), *args)
    assert code == 2 and message in stderr
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("normxlogit attribute-dataset: error:")
    assert not out.exists()


def test_missing_model_folder(capsys, tmp_path, files):
    code, _, stderr = _run(capsys, files["data"], "--model", str(tmp_path / "none"), "--output", str(tmp_path / "o"))
    assert code == 2 and "no such directory" in stderr


def test_a_refused_model_gets_the_one_line_reason_check_model_prints(capsys, tmp_path, files, monkeypatch):
    import torch
    import transformers as T

    from captum_normxlogit import check_model
    from captum_normxlogit._models import registry

    tokenizer = S.bytelevel()
    torch.manual_seed(0)
    granite = T.GraniteForCausalLM(
        T.GraniteConfig(vocab_size=len(tokenizer), num_key_value_heads=2, pad_token_id=0, logits_scaling=4.0, **S.SMALL)
    ).eval()
    folder = S.save(tmp_path / "granite", granite, tokenizer)
    monkeypatch.delitem(registry._BY_MODEL_TYPE, "granite")  # only the automatic adapter is left, and it refuses
    reason = check_model(granite, repeats=1).reason
    capsys.readouterr()
    out = tmp_path / "out"
    code, _, stderr = _run(capsys, files["data"], "--model", folder, "--output", str(out), "--text-column", "sentence")
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert reason in stderr and "check-model" in stderr and not out.exists()


def test_the_default_model_must_be_prepared(capsys, tmp_path, files, monkeypatch):
    monkeypatch.setenv("CAPTUM_NORMXLOGIT_CACHE", str(tmp_path / "empty-cache"))
    out = tmp_path / "out"
    code, _, stderr = _run(capsys, files["data"], "--output", str(out), "--text-column", "sentence")
    assert code == 2 and "default model is not prepared" in stderr and "make prepare" in stderr
    assert len(stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.real
def test_attribute_dataset_then_summarize_on_the_default_model(tmp_path):
    """From the shell, as a user would: the embedded fine-tuned MiniLM on real Rotten-Tomatoes sentences."""
    import subprocess
    import sys

    from captum_normxlogit.resources import rotten_tomatoes_sentences

    sentences = rotten_tomatoes_sentences()
    picked = sentences[:30] + sentences[-30:]
    data = tmp_path / "rt.jsonl"
    data.write_text("".join(json.dumps({"text": t, "gold": ["NEGATIVE", "POSITIVE"][y]}) + "\n" for t, y in picked))
    out = tmp_path / "out"
    cli = [sys.executable, "-m", "captum_normxlogit.cli"]
    run = subprocess.run(
        [*cli, "attribute-dataset", str(data), "--output", str(out), "--label-column", "gold", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1].startswith("wrote 60 rows (0 skipped,")
    df = pd.read_parquet(out)
    assert df["index"].tolist() == list(range(60)) and set(df.target_label) <= {"NEGATIVE", "POSITIVE"}
    assert (df.target_label == df.label).mean() > 0.6  # the fine-tuned model is right on most of them
    summary = subprocess.run(
        [*cli, "summarize", str(out), "--top", "5", "--min-count", "2"], capture_output=True, text=True, timeout=600
    )
    assert summary.returncode == 0, summary.stderr[-3000:]
    assert "POSITIVE" in summary.stdout and "NEGATIVE" in summary.stdout
