"""compare_summaries(): deltas against the two tables, the same-data check, verification on both models; --against."""

from typing import Any

import numpy as np
import pytest

from captum_normxlogit._models.load import load_model_folder
from captum_normxlogit.cli import main
from captum_normxlogit.dataset import attribute_dataset, open_attribution
from captum_normxlogit.dataset.compare import compare_summaries
from captum_normxlogit.dataset.verify import verify_summary
from tests._support import saved as S

TEXTS = [f"{s} {e}".strip() for e in ("", "good", "not bad", "dull plot") for s in S.SENTENCES]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    tok = S.wordpiece()
    out: dict[str, Any] = {}
    for name, seed in (("a", 0), ("b", 4)):
        model_dir = S.save(root / f"model-{name}", S.classifier(seed=seed), tok)
        model, tok, _ = load_model_folder(model_dir)
        attribute_dataset(model, tok, TEXTS, root / name, progress=False)
        out[name] = (model, root / name)
    out["tok"] = tok
    return out


def _summary(folder):
    return open_attribution(folder).summary(min_count=2)


def test_deltas_are_the_difference_of_the_two_tables(runs):
    a, b = _summary(runs["a"][1]), _summary(runs["b"][1])
    contrast = compare_summaries(a, b)
    assert len(contrast.table) > 0 and contrast.n_rows == len(TEXTS)
    for row in contrast.table.itertuples():
        ta = a.table[(a.table["class"] == row[1]) & (a.table["item"] == row.item) & (a.table["level"] == "word")]
        tb = b.table[(b.table["class"] == row[1]) & (b.table["item"] == row.item) & (b.table["level"] == "word")]
        assert row.count_a == int(ta["count"].iloc[0]) >= 2 and row.count_b == int(tb["count"].iloc[0]) >= 2
        stat = a.statistic  # the default statistic, compared unless told otherwise
        assert row.delta == pytest.approx(float(tb[stat].iloc[0]) - float(ta[stat].iloc[0]))
    cls = contrast.table["class"].iloc[0]
    gained, lost = contrast.changed(cls, 3), contrast.changed(cls, 3, direction="lost")
    assert (gained["delta"] > 0).all() and list(gained["delta"]) == sorted(gained["delta"], reverse=True)
    assert (lost["delta"] < 0).all() and list(lost["delta"]) == sorted(lost["delta"])


def test_verified_contrast_measures_each_word_on_each_model(runs):
    a, b = _summary(runs["a"][1]), _summary(runs["b"][1])
    tok = runs["tok"]
    contrast = compare_summaries(a, b, model_a=runs["a"][0], model_b=runs["b"][0], tokenizer=tok, n=2)
    measured = contrast.table[contrast.table["effect_a"].notna() | contrast.table["effect_b"].notna()]
    assert len(measured) > 0
    for side, summary in (("a", a), ("b", b)):
        model = runs[side][0]
        items = {c: list(g["item"]) for c, g in measured.groupby("class") if c in summary.classes}
        direct = verify_summary(summary, model, tok, items=items).effects.set_index(["class", "item"])
        for row in measured.itertuples():
            if (row[1], row.item) in direct.index:
                assert getattr(row, f"effect_{side}") == pytest.approx(direct.loc[(row[1], row.item), "effect"])


def test_other_data_is_refused(runs, tmp_path):
    model, tok = runs["a"][0], runs["tok"]
    shorter = attribute_dataset(model, tok, TEXTS[:-3], tmp_path / "short", progress=False)
    with pytest.raises(ValueError, match="not on the same rows"):
        compare_summaries(_summary(runs["a"][1]), shorter.summary(min_count=2))
    other = attribute_dataset(model, tok, TEXTS[:-1] + ["bad bad"], tmp_path / "other", progress=False)
    with pytest.raises(ValueError, match="other token ids for 1 row"):
        compare_summaries(_summary(runs["a"][1]), other.summary(min_count=2))
    with pytest.raises(ValueError, match="both model_a and model_b"):
        compare_summaries(_summary(runs["a"][1]), _summary(runs["a"][1]), model_a=model)


def test_against_prints_the_contrast(runs, tmp_path, capsys):
    csv = tmp_path / "c.csv"
    assert (
        main(
            [
                "summarize",
                str(runs["a"][1]),
                "--against",
                str(runs["b"][1]),
                "--min-count",
                "2",
                "--verify",
                "--top-k",
                "2",
                "--csv",
                str(csv),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    contrast = compare_summaries(_summary(runs["a"][1]), _summary(runs["b"][1]))
    cls = contrast.table["class"].iloc[0]
    assert f"### {cls}: gained weight in b" in out and f"| {contrast.changed(cls, 1)['item'].iloc[0]} |" in out
    assert "effect_a" in out and csv.is_file()
    same = compare_summaries(_summary(runs["a"][1]), _summary(runs["a"][1]))
    np.testing.assert_allclose(same.table["delta"], 0)
