"""summarize(): every statistic against a plain re-computation, word merging, special tokens, bad input, views."""

import math
import statistics as st

import numpy as np
import pandas as pd
import pytest

from captum_normxlogit.dataset import DEFAULT_STATISTIC, STATISTICS, summarize
from captum_normxlogit.dataset.report import markdown_table, plot_top, summary_markdown, write_html_report
from captum_normxlogit.dataset.summary import guess_special_tokens, item_positions

SPECIAL = ["[CLS]", "[SEP]"]


def _frame():
    rows = [  # (tokens, scores, class)
        (["[CLS]", "un", "##bel", "film", "film", "[SEP]"], [0.3, 1.0, 2.0, -0.5, 0.25, 0.1], "POS"),
        (["[CLS]", "good", "film", "[SEP]"], [0.0, 2.0, 1.0, -0.2], "POS"),
        (["[CLS]", "good", "un", "##bel", "[SEP]"], [0.5, 1.5, -1.0, 0.5, 0.0], "POS"),
        (["[CLS]", "bad", "film", "[SEP]"], [0.0, -3.0, 0.5, 0.0], "NEG"),
        (["[CLS]", "x", "[SEP]"], [0.0, 9.0, 0.0], "NEG"),
    ]
    frame = pd.DataFrame(
        {
            "index": range(len(rows)),
            "input_ids": [list(range(len(t))) for t, _, _ in rows],
            "tokens": [t for t, _, _ in rows],
            "scores": [s for _, s, _ in rows],
            "target": [1 if c == "POS" else 0 for _, _, c in rows],
            "target_label": [c for _, _, c in rows],
            "prob": [0.9] * len(rows),
            "error": [None] * len(rows),
        }
    )
    frame.loc[4, "error"] = "text is empty"  # a skipped row: counted, never summarised
    return frame


def _reference_stats(frame, level):
    """The statistics written out longhand: words = maximal runs of a token and its ## continuations."""
    per: dict[tuple[str, str], dict[str, list[float]]] = {}
    for tokens, scores, cls, error in zip(frame.tokens, frame.scores, frame.target_label, frame.error):
        if error:
            continue
        units: list[tuple[str, float]] = []
        for tok, s in zip(tokens, scores):
            if level == "word" and tok.startswith("##"):
                units[-1] = (units[-1][0] + tok[2:], units[-1][1] + s)
            else:
                units.append((tok, s))
        summed: dict[str, float] = {}
        for item, s in units:
            summed[item] = summed.get(item, 0.0) + s
        regular = [v for k, v in summed.items() if k not in SPECIAL]
        top, mx = max(regular), max(abs(v) for v in regular)
        mu, sd = st.fmean(regular), st.pstdev(regular)
        for item, v in summed.items():
            rec = per.setdefault((cls, item), {"raw": [], "maxabs": [], "z": [], "top": []})
            rec["raw"].append(v)
            rec["maxabs"].append(v / mx)
            rec["z"].append((v - mu) / sd if sd > 0 else 0.0)
            rec["top"].append(item not in SPECIAL and v == top)
    out = {}
    for key, rec in per.items():
        n = len(rec["raw"])
        row = {"count": n, "top_share": sum(rec["top"]) / n}
        for suffix, name in (("", "raw"), ("_maxabs", "maxabs"), ("_z", "z")):
            row["mean" + suffix] = st.fmean(rec[name])
            row["lcb" + suffix] = (
                st.fmean(rec[name]) - 1.6448536269514722 * st.stdev(rec[name]) / math.sqrt(n) if n > 1 else math.nan
            )
        out[key] = row
    return out


@pytest.mark.parametrize("level", ["word", "token"])
def test_statistics_match_a_longhand_computation(level):
    summary = summarize(_frame(), special_tokens=SPECIAL, min_count=1, unit="sum")  # the longhand sums repeats
    table = summary.table[summary.table.level == level]
    expected = _reference_stats(_frame(), level)
    assert set(zip(table["class"], table["item"])) == set(expected)
    for row in table.itertuples(index=False):
        ref = expected[(row[0], row.item)]
        assert row.count == ref["count"]
        for name in ("mean", "lcb", "mean_maxabs", "lcb_maxabs", "mean_z", "lcb_z", "top_share"):
            got, want = getattr(row, name), ref[name]
            assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, abs=1e-12), (row.item, name)


def test_words_are_merged_occurrences_summed_and_specials_apart():
    summary = summarize(_frame(), special_tokens=SPECIAL, min_count=1, unit="sum")
    words = summary.table[(summary.table.level == "word") & (summary.table["class"] == "POS")].set_index("item")
    assert words.loc["unbel", "mean"] == pytest.approx((3.0 + -0.5) / 2)
    assert words.loc["film", "occurrences"] == 3 and words.loc["film", "count"] == 2
    assert words.loc["film", "mean"] == pytest.approx(((-0.5 + 0.25) + 1.0) / 2)
    assert words.loc["[CLS]", "special"] and not words.loc["film", "special"]
    ranked = summary.top("POS", None, statistic="mean")
    assert "[CLS]" not in set(ranked["item"]) and ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    assert set(summary.top("POS", None, special=True)["item"]) <= set(SPECIAL)
    assert summary.n_rows == 5 and summary.n_skipped == 1 and summary.classes == {"POS": 3, "NEG": 1}


def test_top_orders_by_the_statistic_and_honours_min_count():
    summary = summarize(_frame(), special_tokens=SPECIAL, min_count=2)
    assert summary.statistic == DEFAULT_STATISTIC
    top = summary.top("POS", None, statistic="mean")
    assert (top["count"] >= 2).all() and list(top["mean"]) == sorted(top["mean"], reverse=True)
    assert summary.rank_of("bad", "NEG", statistic="mean") is None  # seen once: not ranked at min_count 2
    assert summarize(_frame(), special_tokens=SPECIAL, min_count=1).rank_of("bad", "NEG", statistic="mean") == 2


def test_special_tokens_are_guessed_when_not_given():
    assert guess_special_tokens(["[CLS]", "a", "<|im_end|>", "<s>", "</s>", "<0x0A>", "[x]"]) == [
        "[CLS]",
        "<|im_end|>",
        "<s>",
        "</s>",
    ]
    summary = summarize(_frame())
    assert set(summary.special_tokens) == set(SPECIAL)


def test_item_positions_cover_every_occurrence():
    tokens = ["[CLS]", "un", "##bel", "film", "un", "##bel", "[SEP]"]
    assert item_positions(tokens, "word", "wordpiece", SPECIAL) == {
        "[CLS]": [0],
        "unbel": [1, 2, 4, 5],
        "film": [3],
        "[SEP]": [6],
    }
    assert item_positions(tokens, "token", "wordpiece", SPECIAL)["##bel"] == [2, 5]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.drop(columns=["scores"]), "lacks column"),
        (lambda f: f.assign(scores=[[1.0]] * len(f)), "one score per token"),
        (lambda f: f.assign(error=["bad"] * len(f)), "no rows to summarise"),
    ],
)
def test_bad_tables_are_refused_with_a_clear_error(change, message):
    frame = _frame()
    before = frame.copy(deep=True)
    with pytest.raises(ValueError, match=message):
        summarize(change(frame))
    pd.testing.assert_frame_equal(frame, before)  # the caller's table is untouched


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="statistic"):
        summarize(_frame(), statistic="median")
    with pytest.raises(ValueError, match="min_count"):
        summarize(_frame(), min_count=0)
    summary = summarize(_frame())
    with pytest.raises(ValueError, match="not in this summary"):
        summary.top("NEUTRAL")
    with pytest.raises(ValueError, match="level"):
        summary.top(level="sentence")


def test_views_write_markdown_csv_png_and_html(tmp_path):
    summary = summarize(_frame(), special_tokens=SPECIAL, min_count=1, statistic="lcb_z")  # NaN for a word seen once
    text = summary_markdown(summary, 3)
    assert "### POS" in text and "### NEG" in text and "1 skipped" in text and "Special tokens" in text
    assert markdown_table(pd.DataFrame({"a": [1.5, math.nan], "b": ["x|y", "z"]})).splitlines() == [
        "| a | b |",
        "|---|---|",
        "| 1.5 | x\\|y |",
        "| – | z |",
    ]
    summary.to_csv(tmp_path / "s.csv")
    back = pd.read_csv(tmp_path / "s.csv")
    assert len(back) == len(summary.table) and set(STATISTICS) <= set(back.columns)
    plot_top(summary, tmp_path / "s.png", n=3)
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    write_html_report(summary, tmp_path / "s.html", n=2, examples_per_item=1)
    page = (tmp_path / "s.html").read_text(encoding="utf-8")
    first = summary.top("POS", 1)["item"].iloc[0]
    assert page.startswith("<!DOCTYPE html>") and f"<h3>1. {first}</h3>" in page
    assert page.count("<table class='top'>") == 2 and page.count("<details") == 2  # NEG: seen once, not ranked
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s.html", "s.png"]  # no temporary left
    np.testing.assert_array_equal(summary.top("POS", 2)["rank"], [1, 2])
