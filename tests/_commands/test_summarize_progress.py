"""`normxlogit summarize` shows a bar on a terminal (large folders), none with --quiet or when stderr is a file."""

import sys

import pytest

from captum_normxlogit.cli import main
from captum_normxlogit.dataset import attribute_dataset, summary
from tests._support import saved as S


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("summ") / "out"
    attribute_dataset(S.classifier(), S.wordpiece(), S.SENTENCES * 2, out, progress=False)
    return str(out)


@pytest.mark.parametrize("tty, extra, shown", [(True, [], True), (True, ["--quiet"], False), (False, [], False)])
def test_progress_only_on_a_terminal_and_not_with_quiet(capsys, monkeypatch, folder, tty, extra, shown):
    seen = []
    original = summary.summarize

    def spy(frame, **kwargs):
        seen.append(kwargs.get("progress"))
        return original(frame, **kwargs)

    monkeypatch.setattr(summary, "summarize", spy)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty, raising=False)
    assert main(["summarize", folder, "--min-count", "1", *extra]) == 0
    assert seen == [shown]
    assert "summarize:" not in capsys.readouterr().err  # a small folder: done before the bar's half-second delay


def test_the_bar_counts_the_rows(capsys, folder, monkeypatch):
    import pandas as pd
    import tqdm

    real = tqdm.tqdm
    monkeypatch.setattr(tqdm, "tqdm", lambda *a, **k: real(*a, **{**k, "delay": 0}))  # draw it at once
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.tqdm)
    summary.summarize(pd.read_parquet(folder), progress=True, min_count=1)
    n = len(S.SENTENCES) * 2
    err = capsys.readouterr().err
    assert "summarize: 100%" in err and f"{n}/{n} [" in err
