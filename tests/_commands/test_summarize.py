"""`normxlogit summarize DIR`: Markdown on stdout, CSV / PNG / HTML files, clear refusals."""

import pandas as pd
import pytest

from captum_normxlogit.cli import main
from captum_normxlogit.dataset import attribute_dataset, open_attribution
from tests._support import saved as S


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("summarize") / "attributions"
    attribute_dataset(S.classifier(), S.wordpiece(), S.SENTENCES * 2, out, progress=False)
    return out


def test_summarize_prints_the_tables_and_writes_the_files(folder, tmp_path, capsys):
    html, png, csv = tmp_path / "s.html", tmp_path / "s.png", tmp_path / "s.csv"
    code = main(
        [
            "summarize",
            str(folder),
            "--top",
            "3",
            "--min-count",
            "2",
            "--html",
            str(html),
            "--png",
            str(png),
            "--csv",
            str(csv),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    summary = open_attribution(folder).summary(min_count=2)
    for cls in summary.classes:
        assert f"### {cls}" in out
        for item in summary.top(cls, 3)["item"]:
            assert f"| {item} |" in out
    assert "24 rows, 0 skipped" in out and out.rstrip().endswith(f"wrote {csv}, {png}, {html}")
    assert len(pd.read_csv(csv)) == len(summary.table)
    assert png.read_bytes()[:4] == b"\x89PNG" and "<!DOCTYPE html>" in html.read_text(encoding="utf-8")


def test_token_level_and_another_statistic(folder, capsys):
    assert main(["summarize", str(folder), "--level", "token", "--statistic", "top_share", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "Items are tokens; ranked by `top_share`" in out
    top = open_attribution(folder).summary(statistic="top_share").top(None, 2, level="token")
    assert all(f"| {item} |" in out for item in top["item"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--top", "0"], "--top must be at least 1"),
        (["--min-count", "0"], "--min-count must be at least 1"),
        (["--statistic", "median"], "invalid choice"),
    ],
)
def test_bad_options_are_refused(folder, args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["summarize", str(folder), *args])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_a_folder_that_is_not_an_attribution_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["summarize", str(tmp_path / "missing")])
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    with pytest.raises(SystemExit):
        main(["summarize", str(tmp_path / "other")])
    assert "was not written by attribute_dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["summarize", str(tmp_path / "other"), "--html", str(tmp_path)])
    assert "is a directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]  # nothing written
