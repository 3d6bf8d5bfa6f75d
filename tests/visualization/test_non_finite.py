"""A NaN (or infinite) score shows as a visible placeholder; every other cell of its row keeps its value.

Before, one NaN made the row's divisor ``max |score|`` NaN, and the whole row
was drawn as zeros (white, ``[+0.00]``).
"""

import io
import math
import re

import torch

from captum_normxlogit.visualization import (
    ExplainedExample,
    make_console,
    plot_layer_heatmap,
    print_example,
    render_html,
    render_terminal,
    scale_signed,
    to_visualization_records,
)
from captum_normxlogit.visualization.colours import MISSING_RGB, signed_rgb
from tests.visualization.test_views import _parse

NAN, INF = float("nan"), float("inf")
TOKENS = ["a", "b", "c", "d", "e"]
ROW = torch.tensor([1.0, NAN, -2.0, 0.5, INF])
# What each finite cell must show: its score divided by the largest finite |score| (2).
EXPECTED = ["+0.50", "nan", "-1.00", "+0.25", "+inf"]


def test_scale_signed_divides_by_the_largest_finite_score_and_keeps_nan():
    scaled = scale_signed(torch.stack([ROW, torch.tensor([NAN, NAN, 0.0, 0.0, 0.0])]))
    assert scaled[0].tolist()[:4:2] == [0.5, -1.0] and scaled[0, 3] == 0.25
    assert math.isnan(scaled[0, 1]) and scaled[0, 4] == INF
    assert math.isnan(scaled[1, 0]) and scaled[1, 2:].tolist() == [0.0, 0.0, 0.0]


def test_plain_terminal_row_keeps_the_other_cells():
    line = render_terminal(TOKENS, ROW, colour=False)
    assert line == " ".join(f"{t}[{v}]" for t, v in zip(TOKENS, EXPECTED))
    buffer = io.StringIO()
    example = ExplainedExample("t", TOKENS, {"NormXLogit": ROW, "IG": torch.tensor([0.0, 1.0, 2.0, -4.0, 1.0])})
    print_example(example, make_console(False, file=buffer, width=200))
    rows = {line.split()[0]: line for line in buffer.getvalue().splitlines() if line.startswith("  ")}
    assert rows["NormXLogit"].split()[1:] == [f"{t}[{v}]" for t, v in zip(TOKENS, EXPECTED)]
    assert rows["IG"].split()[1:] == ["a[+0.00]", "b[+0.25]", "c[+0.50]", "d[-1.00]", "e[+0.25]"]


def _backgrounds(ansi: str):
    return [tuple(map(int, m)) for m in re.findall(r"48;2;(\d+);(\d+);(\d+)m", ansi)]


def test_coloured_terminal_greys_and_labels_only_the_non_finite_cells():
    buffer = io.StringIO()
    print_example(ExplainedExample("t", TOKENS, {"NormXLogit": ROW}), make_console(True, file=buffer, width=200))
    out = buffer.getvalue()
    cells = _backgrounds(out)
    assert cells == [signed_rgb(0.5), MISSING_RGB, signed_rgb(-1.0), signed_rgb(0.25), MISSING_RGB]
    visible = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert " b[nan] " in visible and " e[+inf] " in visible and " a " in visible


def test_html_row_keeps_the_other_cells_and_marks_the_nan():
    page = render_html([ExplainedExample("t", TOKENS, {"NormXLogit": ROW})])
    parser = _parse(page)
    cells = {text: (title, rgb) for title, rgb, text in parser.cells}
    assert set(cells) == {"a", "b[nan]", "c", "d", "e[+inf]"}
    for token, value, scaled in (("a", 1.0, 0.5), ("c", -2.0, -1.0), ("d", 0.5, 0.25)):
        title, rgb = cells[token]
        assert f"{value:+.4g} (scaled {scaled:+.2f})" in title and rgb == signed_rgb(scaled)
    assert cells["b[nan]"][1] == MISSING_RGB and "nan" in cells["b[nan]"][0]
    assert "÷2" in "".join(parser.text)  # the divisor is the largest finite |score|


def test_shared_scale_and_merged_words_ignore_the_nan_in_the_divisor():
    example = ExplainedExample(
        "t",
        ["x", "##y", "z"],
        {"0": torch.tensor([NAN, 1.0, 4.0]), "1": torch.tensor([2.0, 2.0, -1.0])},
        shared_scale=True,
    )
    parser = _parse(render_html([example]))
    assert [c[0].split("scaled ")[-1] for c in parser.cells if not c[2].endswith("[nan]")] == [
        "+0.25)",
        "+1.00)",
        "+0.50)",
        "+0.50)",
        "-0.25)",
    ]
    assert "every row ÷4" in "".join(parser.text)
    merged = _parse(
        render_html([ExplainedExample("t", ["x", "##y", "z"], {"m": torch.tensor([NAN, 1.0, 4.0])})], merge_words=True)
    )
    assert [c[2] for c in merged.cells] == ["xy[nan]", "z"]


def test_records_and_heatmap_keep_the_other_cells():
    record = to_visualization_records(ROW[None], [TOKENS], torch.tensor([0.9]), ["POSITIVE"])[0]
    assert record.word_attributions.tolist() == [0.5, 0.0, -1.0, 0.25, 0.0]  # Captum would draw NaN as +1
    assert record.raw_input_ids == ["a", "b[nan]", "c", "d", "e[+inf]"]
    fig = plot_layer_heatmap(torch.tensor([[1.0, NAN], [-3.0, 0.5]]), ["a", "b"])
    assert fig.axes[0].images[0].get_clim() == (-3.0, 3.0)
