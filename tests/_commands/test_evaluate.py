"""`normxlogit evaluate`: options, dispatch to the tasks, and a short real run."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from captum_normxlogit.cli import main


def test_help_names_tasks_and_options(capsys):
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for word in (
        "sentiment-minilm",
        "sentiment-smollm2",
        "agreement-smollm2",
        "--limit",
        "--batch-size",
        "--device",
        "--output",
        "--ig-steps",
        "--methods",
    ):
        assert word in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "evaluate" in capsys.readouterr().out


def test_help_lists_the_task_table(capsys):
    from captum_normxlogit._commands.evaluate.tasks import TASKS

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the option help
    assert list(TASKS) == ["sentiment-minilm", "sentiment-smollm2", "agreement-smollm2"]
    assert "{sentiment-minilm,sentiment-smollm2,agreement-smollm2,all}" in out
    for name, task in TASKS.items():
        assert f"{name} {task.description}" in out
    # each option's per-task default, in table order
    for option in ("batch_size", "ig_steps"):
        defaults = ", ".join(f"{name} {getattr(task, option)}" for name, task in TASKS.items())
        assert f"(default: per task: {defaults})" in out
    assert "(default: per task: sentiment-minilm all, sentiment-smollm2 100, agreement-smollm2 all)" in out


def test_each_task_runner_takes_the_options_evaluate_passes_with_the_table_defaults():
    import inspect

    from captum_normxlogit._commands.evaluate.tasks import TASKS

    for task in TASKS.values():
        parameters = inspect.signature(task.function()).parameters
        defaults = {name: parameters[name].default for name in ("limit", "batch_size", "ig_steps")}
        assert defaults == {"limit": task.limit, "batch_size": task.batch_size, "ig_steps": task.ig_steps}
        assert {"device", "progress"} <= set(parameters)
        assert ("methods" in parameters) == task.takes_methods


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--limit", "0"], "--limit must be at least 1"),
        (["--ig-steps", "-2"], "--ig-steps must be at least 1"),
        (["--methods", "normxlogit,shap"], "unknown ['shap']"),
        (["--device", "tpu9"], "is not a torch device"),
        (["--task", "mnli"], "invalid choice"),
    ],
)
def test_bad_arguments_are_refused(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--output", str(tmp_path / "out"), *argv])
    assert info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_unwritable_output_is_refused_before_any_work(monkeypatch, capsys, tmp_path):
    from captum_normxlogit._commands.evaluate import sentiment

    monkeypatch.setattr(sentiment, "run_sentiment_minilm", lambda **kw: pytest.fail("the task ran"))
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--task", "sentiment-minilm", "--output", str(blocker / "out")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--output" in err and "cannot write" in err and "is a file, not a folder" in err
    assert blocker.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_without_a_gpu_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--device", "cuda"])
    assert info.value.code == 2 and "CUDA is not available" in capsys.readouterr().err


class FakeResult:
    def __init__(self, name):
        self.name = name
        self.table = pd.DataFrame({"method": ["NormXLogit"], "comp_aopc": [0.5]})

    def write(self, output_dir):
        path = Path(output_dir) / f"{self.name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.table.to_csv(index=False))
        return [path]


def test_every_task_is_dispatched_with_the_options(monkeypatch, tmp_path, capsys):
    from captum_normxlogit._commands.evaluate import agreement, sentiment

    calls = {}

    def fake(name):
        def run(**kwargs):
            calls[name] = kwargs
            return FakeResult(name)

        return run

    monkeypatch.setattr(sentiment, "run_sentiment_minilm", fake("sentiment-minilm"))
    monkeypatch.setattr(sentiment, "run_sentiment_smollm2", fake("sentiment-smollm2"))
    monkeypatch.setattr(agreement, "run_agreement", fake("agreement-smollm2"))
    code = main(
        [
            "evaluate",
            "--limit",
            "3",
            "--batch-size",
            "2",
            "--ig-steps",
            "5",
            "--methods",
            "normxlogit,random",
            "--output",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 0
    assert list(calls) == ["sentiment-minilm", "sentiment-smollm2", "agreement-smollm2"]
    common = {"limit": 3, "batch_size": 2, "ig_steps": 5, "device": "cpu", "progress": False}
    assert calls["sentiment-minilm"] == {**common, "methods": ["normxlogit", "random"]}
    assert calls["agreement-smollm2"] == common  # part B's task takes no method list
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "agreement-smollm2.csv",
        "sentiment-minilm.csv",
        "sentiment-smollm2.csv",
    ]
    captured = capsys.readouterr()
    assert "NormXLogit" in captured.out and "--methods applies to the sentiment tasks" in captured.err
    # task defaults stay with the task when the options are left out
    calls.clear()
    main(["evaluate", "--task", "sentiment-smollm2", "--output", str(tmp_path), "--no-progress"])
    assert calls["sentiment-smollm2"] == {"device": "cpu", "progress": False, "methods": None}


def test_method_keys_are_case_insensitive_and_unknown_ones_list_every_key(monkeypatch, tmp_path, capsys):
    from captum_normxlogit._commands.evaluate import sentiment
    from captum_normxlogit.methods import METHOD_KEYS

    calls = {}
    monkeypatch.setattr(sentiment, "run_sentiment_minilm", lambda **kw: calls.update(kw) or FakeResult("s"))
    code = main(
        [
            "evaluate",
            "--task",
            "sentiment-minilm",
            "--methods",
            "NormXLogit,IG,RANDOM",
            "--output",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 0 and calls["methods"] == ["normxlogit", "ig", "random"]
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--methods", "IG,GradCAM", "--output", str(tmp_path / "never")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "unknown ['GradCAM']" in err and ", ".join(METHOD_KEYS) in err


def test_help_lists_every_method_key_with_its_description(capsys):
    from captum_normxlogit.methods import METHODS

    for command in ("evaluate", "explain"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        for spec in METHODS.values():
            assert f"{spec.key} {spec.description.split('{')[0][:30]}" in out


@pytest.mark.real
def test_a_short_real_run_writes_every_file(tmp_path):
    out = tmp_path / "evaluation"
    for task, extra in (
        ("sentiment-minilm", ["--limit", "4"]),
        ("sentiment-smollm2", ["--limit", "2", "--methods", "normxlogit,layer_ig,random"]),
    ):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "captum_normxlogit.cli",
                "evaluate",
                "--task",
                task,
                "--ig-steps",
                "2",
                "--output",
                str(out),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        for suffix in (".csv", "_curves.csv", ".md", ".png"):
            assert (out / f"{task}{suffix}").is_file()
        assert "NormXLogit" in result.stderr  # tqdm progress bars, one per method
    minilm = pd.read_csv(out / "sentiment-minilm.csv")
    assert list(minilm["method"]) == [
        "NormXLogit",
        "LogAt",
        "Norm",
        "IntegratedGradients",
        "LayerIntegratedGradients",
        "Saliency",
        "InputXGradient",
        "Random",
    ]
    assert minilm["comp_aopc"].between(-1, 1).all() and minilm["suff_acc_aopc"].between(0, 1).all()
    smol = pd.read_csv(out / "sentiment-smollm2.csv")
    assert list(smol["method"]) == ["NormXLogit", "LayerIntegratedGradients", "Random"]
    report = (out / "sentiment-smollm2.md").read_text(encoding="utf-8")
    assert "' positive'" in report and "Accuracy on these 2 held-out sentences" in report
