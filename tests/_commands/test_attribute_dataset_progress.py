"""What attribute-dataset and explain tell the user: the bar's total, resume wording, --device, quiet loading."""

import json

import pandas as pd
import pytest
import torch

from captum_normxlogit.cli import main
from tests._support import saved as S


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress")
    texts = [f"{s} {e}".strip() for e in ("", "good") for s in S.SENTENCES]  # 24 rows
    (root / "data.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    pd.DataFrame({"text": texts}).to_csv(root / "data.csv", index=False)
    return {"cls": S.save(root / "cls", S.classifier(), S.wordpiece()), "root": root, "rows": len(texts)}


def _run(capsys, *args):
    code = main(["attribute-dataset", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("name", ["data.jsonl", "data.csv"])
def test_the_bar_has_a_total(capsys, tmp_path, files, name):
    code, _, err = _run(
        capsys, str(files["root"] / name), "--model", files["cls"], "--output", str(tmp_path / "o"), "--shard-size", "5"
    )
    n = files["rows"]
    assert code == 0 and f"{n}/{n} [" in err and "0/None" not in err


def test_a_resumed_run_says_what_it_kept_and_what_it_wrote(capsys, tmp_path, files):
    data, out = str(files["root"] / "data.jsonl"), tmp_path / "o"
    common = [data, "--model", files["cls"], "--output", str(out), "--shard-size", "5"]
    code, stdout, _ = _run(capsys, *common, "--limit", "10", "--no-progress")
    assert code == 0 and stdout.startswith("wrote 10 rows (0 skipped,")
    code, stdout, err = _run(capsys, *common)
    assert code == 0
    assert stdout.startswith("kept 10 rows in 2 shards of an earlier run, wrote 14 rows in 3 shards: 24 rows "), stdout
    assert "kept 10" in err and "14/14 [" in err  # the bar counts only the rows still to compute
    code, stdout, _ = _run(capsys, *common, "--no-progress")
    assert code == 0 and stdout.startswith("kept 24 rows in 5 shards of an earlier run, wrote 0 rows in 0 shards")
    manifest = json.loads((out / ".manifest.json").read_text())
    assert manifest["run"]["kept"] == {"rows": 24, "shards": 5} and manifest["run"]["written"]["rows"] == 0


def test_device_cpu(capsys, tmp_path, files):
    out = tmp_path / "o"
    code, stdout, _ = _run(
        capsys,
        str(files["root"] / "data.jsonl"),
        "--model",
        files["cls"],
        "--output",
        str(out),
        "--device",
        "cpu",
        "--no-progress",
    )
    assert code == 0 and stdout.startswith("wrote 24 rows")
    code = main(
        [
            "explain",
            "a gorgeous , witty movie .",
            "--model",
            files["cls"],
            "--methods",
            "normxlogit",
            "--device",
            "cpu",
            "--colour",
            "never",
        ]
    )
    assert code == 0 and "gorgeous[" in capsys.readouterr().out


BAD_DEVICES = ["gpu", "cuda:x"] + ([] if torch.cuda.is_available() else ["cuda"])


@pytest.mark.parametrize("device", BAD_DEVICES)
def test_a_bad_device_is_one_sentence(capsys, tmp_path, files, device):
    out = tmp_path / "o"
    code, _, err = _run(
        capsys, str(files["root"] / "data.jsonl"), "--model", files["cls"], "--output", str(out), "--device", device
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and f"--device {device}" in err.replace("'", "")
    assert err.startswith("normxlogit attribute-dataset: error:") and "pass" in err and not out.exists()
    code = main(["explain", "a movie", "--model", files["cls"], "--device", device])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--device" in err and "Traceback" not in err


def test_loading_prints_nothing_of_transformers_and_restores_its_settings(capsys, tmp_path, files):
    from transformers.utils import logging as hf_logging

    folder = tmp_path / "sharded"
    S.classifier().save_pretrained(folder, max_shard_size="20KB")  # several weight files
    S.wordpiece().save_pretrained(folder)
    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    capsys.readouterr()
    import transformers as T

    T.AutoModelForSequenceClassification.from_pretrained(folder)
    assert "Loading" in capsys.readouterr().err  # transformers' own bar, which the commands keep out
    code, stdout, err = _run(
        capsys,
        str(files["root"] / "data.jsonl"),
        "--model",
        str(folder),
        "--output",
        str(tmp_path / "o"),
        "--no-progress",
    )
    assert code == 0 and err == "" and stdout.startswith("wrote 24 rows")
    main(["explain", "a movie", "--model", str(folder), "--methods", "normxlogit", "--colour", "never"])
    assert "Loading" not in capsys.readouterr().err
    assert (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()) == (level, bars)
