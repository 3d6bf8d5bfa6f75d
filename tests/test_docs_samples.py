"""The command output the docs show is what the commands print now: the sample last line of
docs/dataset.md and the plain (colourless) output sample of docs/views.md."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from captum_normxlogit.cli import main
from tests._support import saved as S

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _dataset_sample() -> str:
    text = " ".join((DOCS / "dataset.md").read_text(encoding="utf-8").split())
    found = re.search(r"the last line says what was written, e\.g\. .*?`(wrote [^`]+)`", text)
    assert found, "docs/dataset.md lost its sample last line"
    return found.group(1)


def _as_pattern(sample: str) -> re.Pattern:
    # Numbers and the folder vary with the run; the words, their order and the punctuation may not.
    parts = re.split(r"(\d[\d,.]*|out/rt)", sample)
    body = "".join(
        (r"\d[\d,.]*" if re.fullmatch(r"\d[\d,.]*", p) else r"\S+" if p == "out/rt" else re.escape(p)) for p in parts
    )
    return re.compile(body)


def test_the_dataset_doc_s_last_line_is_what_attribute_dataset_prints(tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(f'{{"text": "{s}"}}\n' for s in S.SENTENCES[:7]), encoding="utf-8")
    model = S.save(tmp_path / "cls", S.classifier(), S.wordpiece())
    assert (
        main(
            [
                "attribute-dataset",
                str(data),
                "--model",
                model,
                "--output",
                str(tmp_path / "rt"),
                "--shard-size",
                "3",
                "--no-progress",
            ]
        )
        == 0
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert _as_pattern(_dataset_sample()).fullmatch(last), (last, _dataset_sample())


def _views_plain_sample() -> list:
    text = (DOCS / "views.md").read_text(encoding="utf-8")
    found = re.search(r"every token carries its\nscaled score instead:\n\n```\n(.*?)```", text, flags=re.S)
    assert found, "docs/views.md lost its plain-output sample"
    return found.group(1).rstrip("\n").splitlines()


@pytest.mark.real
def test_the_views_doc_s_plain_sample_is_what_explain_prints():
    pytest.importorskip("gguf")
    from captum_normxlogit.resources import sentiment_minilm_dir

    if not (sentiment_minilm_dir() / "metrics.json").exists():
        pytest.skip("real models not prepared (make prepare)")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "captum_normxlogit",
            "explain",
            "a gorgeous , witty , seductive movie .",
            "--colour",
            "never",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.rstrip("\n").splitlines() == _views_plain_sample()
