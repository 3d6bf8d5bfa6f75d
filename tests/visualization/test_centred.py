"""The centred view: each row minus its mean over the non-special columns, scaled by its max |centred|; raw on hover."""

import pytest
import torch

from captum_normxlogit.visualization import ExplainedExample, render_html
from captum_normxlogit.visualization.example import prepare_rows


def test_centred_rows_subtract_the_mean_of_the_regular_columns():
    tokens = ["[CLS]", "a", "good", "film", "[SEP]"]
    raw = [5.0, 1.0, 3.0, 2.0, -4.0]
    example = ExplainedExample("t", tokens, {"nx": torch.tensor(raw)}, centred=True)
    rows = prepare_rows(example, special_tokens={"[CLS]", "[SEP]"})
    mean = (1.0 + 3.0 + 2.0) / 3
    centred = [v - mean for v in raw]
    top = max(abs(v) for v in centred)
    assert rows.centres["nx"] == mean
    assert rows.scaled["nx"] == pytest.approx([v / top for v in centred], abs=1e-6)
    assert rows.raw["nx"].tolist() == raw and "centred on each row's mean" in rows.subtitle
    # uncentred: every regular word is positive, so all are green; centred: "a" turns red
    plain = prepare_rows(ExplainedExample("t", tokens, {"nx": torch.tensor(raw)}), special_tokens={"[CLS]", "[SEP]"})
    assert all(v > 0 for v in plain.scaled["nx"][1:4]) and rows.scaled["nx"][1] < 0 < rows.scaled["nx"][2]
    page = render_html([example], special_tokens={"[CLS]", "[SEP]"})
    assert "good: raw +3, centred +1" in page
