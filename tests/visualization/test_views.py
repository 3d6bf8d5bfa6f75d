"""The views: scaling, the standalone HTML page, the terminal, Captum's records and the layer heatmap."""

import html.parser
import io
import re

import pytest
import torch
from rich.console import Console

from captum_normxlogit.visualization import (
    ExplainedExample,
    make_console,
    plot_layer_heatmap,
    print_example,
    render_html,
    render_terminal,
    scale_signed,
    to_visualization_records,
    write_html,
)

VOID = {"meta", "br", "img", "input", "hr", "link"}


def test_scale_signed_keeps_sign_and_ratio_per_row():
    scores = torch.tensor([[2.0, -4.0, 1.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(scale_signed(scores), torch.tensor([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0]]))


class _Page(html.parser.HTMLParser):
    """Collects text, hover titles, token-cell colours, and checks every tag is closed in order."""

    def __init__(self):
        super().__init__()
        self.text, self.titles, self.cells, self.stack, self.errors = [], [], [], [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if "title" in attrs and tag == "td":
            self.titles.append(attrs["title"])
            colour = re.search(r"background:#([0-9a-f]{6})", attrs.get("style", ""))
            assert colour is not None, attrs
            self._cell = [attrs["title"], tuple(int(colour.group(1)[i : i + 2], 16) for i in (0, 2, 4)), ""]

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)
        if tag == "td" and self._cell:
            self.cells.append(tuple(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell:
            self._cell[2] += data


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    assert not parser.errors and not parser.stack, (parser.errors, parser.stack)
    return parser


def test_html_page_has_every_token_method_and_raw_score(tmp_path):
    tokens = ["[CLS]", "great", "<b>", "movie", "[SEP]"]
    example = ExplainedExample(
        "POSITIVE (p=0.9)",
        tokens,
        {"NormXLogit": torch.tensor([1.0, 3.0, -2.0, 0.5, 0.0]), "IG": torch.tensor([0.0, 0.9, -0.1, 0.2, 0.0])},
    )
    page = render_html([example], title="demo")
    assert page.startswith("<!DOCTYPE html>")
    parser = _parse(page)
    text = "".join(parser.text)
    for token in tokens + ["NormXLogit", "IG", "POSITIVE (p=0.9)"]:
        assert token in text
    assert "&lt;b&gt;" in page and "<b>" not in page.split("</h1>", 1)[1]  # a token that looks like a tag is shown
    assert any("NormXLogit" in t and "great: +3" in t for t in parser.titles)
    assert any("IG" in t and "<b>: -0.1" in t for t in parser.titles)
    assert "÷3" in text and "÷0.9" in text  # each row's divisor is stated
    # Colour semantics: positive green (g > r), negative red (r > g), zero white; stronger = further from white.
    by_title = {t: rgb for t, rgb, _ in parser.cells}
    great = next(rgb for t, rgb in by_title.items() if t.startswith("NormXLogit · great"))
    tag = next(rgb for t, rgb in by_title.items() if t.startswith("NormXLogit · <b>"))
    movie = next(rgb for t, rgb in by_title.items() if t.startswith("NormXLogit · movie"))
    sep = next(rgb for t, rgb in by_title.items() if t.startswith("NormXLogit · [SEP]"))
    assert great[1] > great[0] and tag[0] > tag[1] and sep == (255, 255, 255)
    assert sum(great) < sum(movie)  # +1.0 is darker than +0.17
    path = tmp_path / "sub" / "page.html"
    write_html(str(path), page)
    assert path.read_text(encoding="utf-8") == page
    with pytest.raises(ValueError, match="scores for 5 tokens"):
        render_html([ExplainedExample("x", tokens, {"m": torch.ones(3)})])


def test_html_merges_words_shares_scales_and_flags_unsigned():
    tokens = ["[CLS]", "un", "##bel", "##ie", "##va", "##bly", "good", "[SEP]"]
    scores = torch.tensor([0.5, 1.0, -0.25, 0.25, 0.5, 0.5, -1.0, 0.0])
    example = ExplainedExample("t", tokens, {"NormXLogit": scores, "Saliency": scores.abs()}, unsigned=["Saliency"])
    parser = _parse(render_html([example], merge_words=True, special_tokens={"[CLS]", "[SEP]"}))
    shown = [cell[2] for cell in parser.cells if cell[0].startswith("NormXLogit")]
    assert shown == ["[CLS]", "unbelievably", "good", "[SEP]"]
    word = next(cell[0] for cell in parser.cells if cell[0].startswith("NormXLogit · un + ##bel"))
    assert "un + ##bel + ##ie + ##va + ##bly: +2" in word  # the raw sum 1 - .25 + .25 + .5 + .5
    assert "unsigned" in "".join(parser.text)

    layers = ExplainedExample(
        "layers", ["a", "b"], {"0": torch.tensor([1.0, -0.5]), "1": torch.tensor([4.0, 2.0])}, shared_scale=True
    )
    parser = _parse(render_html([layers]))
    assert [c[0].split("scaled ")[1] for c in parser.cells] == ["+0.25)", "-0.12)", "+1.00)", "+0.50)"]
    assert "every row ÷4" in "".join(parser.text)  # the one divisor, stated once


def _backgrounds(ansi: str):
    return [tuple(map(int, m)) for m in re.findall(r"48;2;(\d+);(\d+);(\d+)m", ansi)]


def test_terminal_line_has_tokens_with_and_without_colour():
    plain = render_terminal(["a", "gorgeous", "movie"], torch.tensor([0.5, 2.0, -1.0]), colour=False)
    assert plain == "a[+0.25] gorgeous[+1.00] movie[-0.50]"
    coloured = render_terminal(["a", "gorgeous", "movie"], torch.tensor([0.5, 2.0, -1.0]), colour=True)
    assert all(t in coloured for t in ("a", "gorgeous", "movie"))
    weak, strong, negative = _backgrounds(coloured)
    assert strong[1] > strong[0] and negative[0] > negative[1] and sum(strong) < sum(weak)
    with pytest.raises(ValueError):
        render_terminal(["a"], torch.ones(2), colour=False)


def test_terminal_example_aligns_methods_and_wraps_every_token():
    tokens = ["[CLS]"] + [f"word{i}" for i in range(30)] + ["[SEP]"]
    rows = {"NormXLogit": torch.linspace(-1, 1, 32), "IntegratedGradients": torch.linspace(1, -1, 32)}
    example = ExplainedExample("POSITIVE (p=0.97)", tokens, rows, {"NormXLogit": 0.012})
    buffer = io.StringIO()
    print_example(example, make_console(True, file=buffer, width=100))
    out = buffer.getvalue()
    visible = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert "POSITIVE (p=0.97)" in visible and "12 ms" in visible
    assert all(f" {t} " in visible for t in tokens)
    assert visible.count("IntegratedGradients") >= 2  # wrapped at width 100: each block repeats the rows
    assert max(len(line) for line in visible.splitlines()) <= 100
    buffer = io.StringIO()
    print_example(example, make_console(False, file=buffer, width=100))
    assert "word0[-0.94]" in buffer.getvalue() and "\x1b[" not in buffer.getvalue()
    # 16 colours cannot show the scale: the plain view, with numbers, is printed instead.
    buffer = io.StringIO()
    print_example(example, Console(file=buffer, force_terminal=True, color_system="standard", width=100))
    assert "word0[-0.94]" in buffer.getvalue()


def test_records_feed_captum_visualize_text():
    pytest.importorskip("IPython")
    from captum.attr import visualization

    attributions = torch.tensor([[1.0, -4.0, 2.0, 0.0], [3.0, 0.5, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    tokens = [["[CLS]", "<i>", "##s", "[SEP]"], ["Ġthe", "Ġend", "[PAD]", "[PAD]"]]
    records = to_visualization_records(
        attributions,
        tokens,
        torch.tensor([0.9, 0.6]),
        [1, 0],
        true_labels=[1, 1],
        attention_mask=mask,
        method="NormXLogit",
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
    )
    torch.testing.assert_close(records[0].word_attributions, torch.tensor([0.25, -1.0, 0.5, 0.0]))
    torch.testing.assert_close(records[1].word_attributions, torch.tensor([1.0, 0.5 / 3]))
    assert records[0].raw_input_ids == ["[CLS]", "&lt;i&gt;", "##s", "[SEP]"]
    assert records[1].raw_input_ids == ["the", "end"]  # pads dropped, byte-level marker decoded
    assert records[0].attr_class == "POSITIVE · NormXLogit · ÷4" and records[0].attr_score == pytest.approx(-1.0)
    assert (records[0].pred_class, records[0].true_class, records[1].pred_class) == ("POSITIVE", "POSITIVE", "NEGATIVE")
    page = visualization.visualize_text(records).data
    assert "&lt;i&gt;" in page and "÷4" in page and "NEGATIVE (0.60)" in page
    merged = to_visualization_records(
        attributions[:1],
        tokens[:1],
        torch.tensor([0.9]),
        ["POSITIVE"],
        merge_words=True,
        special_tokens={"[CLS]", "[SEP]"},
    )[0]
    assert merged.raw_input_ids == ["[CLS]", "&lt;i&gt;s", "[SEP]"]
    torch.testing.assert_close(merged.word_attributions, torch.tensor([0.5, -1.0, 0.0]))  # (-4 + 2) = -2 is the max
    with pytest.raises(ValueError, match="one per example"):
        to_visualization_records(attributions, tokens[:1], torch.tensor([0.9, 0.6]), [1, 0])


def test_layer_heatmap_is_centred_labelled_and_leaves_pyplot_alone():
    import matplotlib
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    scores = torch.tensor([[0.5, -3.0, 1.0], [2.0, 0.0, -1.0]])
    fig = plot_layer_heatmap(scores, ["a", "b", "c"], layer_labels=["emb", "last"], title="target POSITIVE")
    assert plt.get_fignums() == before  # a bare Agg figure, never registered with pyplot (nothing to show)
    ax = fig.axes[0]
    image = ax.images[0]
    assert image.get_clim() == (-3.0, 3.0)  # symmetric around 0 from the largest |score|
    cells = image.get_array()
    assert cells is not None
    torch.testing.assert_close(torch.tensor(cells.data), scores)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["emb", "last"]
    assert ax.get_title() == "target POSITIVE" and "±3" in fig.axes[1].get_ylabel()
    white, low, high = (image.cmap(x)[:3] for x in (0.5, 0.0, 1.0))
    assert white == pytest.approx((1.0, 1.0, 1.0), abs=0.01) and low[0] > low[1] and high[1] > high[0]
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"

    figure, axes = matplotlib.figure.Figure(), None
    axes = figure.add_subplot(1, 1, 1)
    assert plot_layer_heatmap(torch.zeros(2, 3), ["a", "b", "c"], ax=axes) is figure  # all-zero map still draws
    with pytest.raises(ValueError, match="2-D"):
        plot_layer_heatmap(torch.zeros(1, 2, 3), ["a", "b", "c"])
    with pytest.raises(ValueError, match="2 tokens for 3"):
        plot_layer_heatmap(torch.zeros(2, 3), ["a", "b"])
