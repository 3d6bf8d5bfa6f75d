"""The views: scaling, the standalone HTML page and the terminal line."""
import html.parser

import pytest
import torch

from captum_normxlogit.visualization import render_html, render_terminal, scale_signed
from captum_normxlogit.visualization.html import ExplainedExample, write_html


def test_scale_signed_keeps_sign_and_ratio_per_row():
    scores = torch.tensor([[2.0, -4.0, 1.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(scale_signed(scores), torch.tensor([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0]]))


class _Collect(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.text, self.titles, self.open = [], [], 0

    def handle_starttag(self, tag, attrs):
        self.open += tag not in ("meta",)
        self.titles += [v for k, v in attrs if k == "title"]

    def handle_endtag(self, tag):
        self.open -= 1

    def handle_data(self, data):
        self.text.append(data)


def test_html_page_has_every_token_method_and_raw_score(tmp_path):
    tokens = ["[CLS]", "great", "<b>", "movie"]
    example = ExplainedExample("POSITIVE", tokens, {"NormXLogit": torch.tensor([1.0, 3.0, -2.0, 0.5]),
                                                     "IG": torch.tensor([0.0, 0.9, -0.1, 0.2])})
    page = render_html([example], title="demo")
    parser = _Collect()
    parser.feed(page)
    text = "".join(parser.text)
    for token in tokens + ["NormXLogit", "IG", "POSITIVE"]:
        assert token in text
    assert "&lt;b&gt;" in page  # a token that looks like a tag is shown, not parsed
    assert "NormXLogit: +3" in parser.titles and "IG: -0.1" in parser.titles
    assert parser.open == 0  # every tag closed
    path = tmp_path / "sub" / "page.html"
    write_html(str(path), page)
    assert path.read_text(encoding="utf-8") == page
    with pytest.raises(ValueError, match="scores for 4 tokens"):
        render_html([ExplainedExample("x", tokens, {"m": torch.ones(3)})])


def test_terminal_line_has_tokens_with_and_without_colour():
    plain = render_terminal(["a", "gorgeous", "movie"], torch.tensor([0.5, 2.0, -1.0]), colour=False)
    assert plain == "a[+0.25] gorgeous[+1.00] movie[-0.50]"
    coloured = render_terminal(["a", "gorgeous", "movie"], torch.tensor([0.5, 2.0, -1.0]), colour=True)
    assert "\x1b[48;2;" in coloured and all(t in coloured for t in ("a", "gorgeous", "movie"))
    with pytest.raises(ValueError):
        render_terminal(["a"], torch.ones(2), colour=False)
