"""Hostile text never reaches a terminal or a page as it is: control characters, escape sequences,
bidi overrides and zero-width characters become visible ``⟨U+XXXX⟩`` placeholders, markup is escaped.

Byte-level tokens are made with the `tokenizers` library's own GPT-2 byte mapping, so the test
does not rely on the package's decoder to produce the hostile bytes.
"""

import html
import io
import re
import unicodedata

import pytest
import torch
from tokenizers import pre_tokenizers

from captum_normxlogit.visualization import (
    ExplainedExample,
    display_token,
    make_console,
    merge_subwords,
    plot_layer_heatmap,
    print_example,
    render_html,
    render_terminal,
    to_visualization_records,
)
from captum_normxlogit.visualization.tokens import visible_text

ESC, CSI_CLEAR = "\x1b", "\x1b[2J"
HOSTILE = {
    "escape": (f"{CSI_CLEAR}x", "⟨U+001B⟩[2Jx"),
    "bell": ("a\x07b", "a⟨U+0007⟩b"),
    "carriage return": ("ok\rno", "ok⟨U+000D⟩no"),
    "c1 csi": ("a\x9b31m", "a⟨U+009B⟩31m"),
    "delete": ("a\x7f", "a⟨U+007F⟩"),
    "rlo": ("abc\u202edef", "abc⟨U+202E⟩def"),
    "lre": ("\u202aq", "⟨U+202A⟩q"),
    "isolates": ("\u2066x\u2069", "⟨U+2066⟩x⟨U+2069⟩"),
    "zero width": ("pay\u200bpal\u200d\ufeff", "pay⟨U+200B⟩pal⟨U+200D⟩⟨U+FEFF⟩"),
    "line separator": ("a\u2028b", "a⟨U+2028⟩b"),
}
# Everything a terminal or a browser would act on, or that would be invisible.
DANGEROUS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2028\u2029\u2060-\u2064\u2066-\u2069\ufeff]"
)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_visible_text_names_every_invisible_or_active_character(name):
    raw, shown = HOSTILE[name]
    assert visible_text(raw) == shown
    assert visible_text("plain café 😀 <b>&") == "plain café 😀 <b>&"  # printable text is left as it is


def test_every_format_and_control_character_is_replaced():
    for code in list(range(0x20)) + list(range(0x7F, 0xA0)) + [0x200B, 0x200E, 0x202E, 0x2066, 0xFEFF, 0xE0001]:
        if chr(code) in "\n\t":
            continue
        assert visible_text(chr(code)) == f"⟨U+{code:04X}⟩"
    assert unicodedata.category("\u00ad") == "Cf" and visible_text("\u00ad") == "⟨U+00AD⟩"  # soft hyphen


def _bytelevel(text: str) -> str:
    ((encoded, _),) = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(text)
    return encoded


def test_bytelevel_tokens_decode_to_placeholders_never_to_raw_bytes():
    for raw, shown in HOSTILE.values():
        token = _bytelevel(raw)
        assert not DANGEROUS.search(token)  # the byte-level string itself is harmless...
        assert display_token(token, "bytelevel") == shown  # ...and so is what we decode from it
    pieces = [_bytelevel("a" + ESC), _bytelevel("[2J\u202e"), _bytelevel(" ok")]
    words, _ = merge_subwords(pieces, torch.ones(3), "bytelevel")
    assert words == ["a⟨U+001B⟩[2J⟨U+202E⟩", "ok"]
    # a split inside a character still decodes across the pieces
    rlo = _bytelevel("\u202e")
    assert merge_subwords([rlo[:1], rlo[1:]], torch.ones(2), "bytelevel")[0] == ["⟨U+202E⟩"]


def test_wordpiece_and_special_tokens_are_made_visible_too():
    assert display_token("x\u202e", "wordpiece") == "x⟨U+202E⟩"
    assert display_token("<s\x1b>", "wordpiece", special_tokens={"<s\x1b>"}) == "<s⟨U+001B⟩>"
    assert merge_subwords(["a\u200b", "##b\x1b"], torch.ones(2), "wordpiece")[0] == ["a⟨U+200B⟩b⟨U+001B⟩"]


def _example():
    tokens = [_bytelevel(raw) for raw, _ in HOSTILE.values()] + [_bytelevel(" <script>alert(1)</script>&amp;")]
    return ExplainedExample(
        f"title {CSI_CLEAR}\u202e",
        tokens,
        {"row\x1b]0;pwn\x07": torch.linspace(-1, 1, len(tokens))},
        subtitle="sub\u2066title",
        seconds={"row\x1b]0;pwn\x07": 0.01},
    )


def _check_terminal(out: str):
    without_our_colours = re.sub(r"\x1b\[[0-9;]*m", "", out)  # rich's own SGR codes, nothing else
    assert not DANGEROUS.search(without_our_colours), repr(without_our_colours)
    for _, shown in HOSTILE.values():
        assert shown in without_our_colours
    assert "title ⟨U+001B⟩[2J⟨U+202E⟩" in without_our_colours and "row⟨U+001B⟩]0;pwn⟨U+0007⟩" in without_our_colours


@pytest.mark.parametrize("colour", [False, True], ids=["plain", "colour"])
def test_terminal_views_show_placeholders(colour):
    buffer = io.StringIO()
    print_example(_example(), make_console(colour, file=buffer, width=400), scheme="bytelevel")
    _check_terminal(buffer.getvalue())
    line = render_terminal([f"a{ESC}[2J", "b\u202e"], torch.ones(2), label=f"{ESC}]0;x", colour=colour)
    assert not DANGEROUS.search(re.sub(r"\x1b\[[0-9;]*m", "", line))
    assert "⟨U+001B⟩[2J" in line and "b⟨U+202E⟩" in line


def test_html_escapes_markup_and_shows_the_same_placeholders():
    page = render_html([_example()], title=f"explain: {CSI_CLEAR}<script>\u202e", note="n\x07", scheme="bytelevel")
    assert not DANGEROUS.search(page)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;&amp;amp;" in page
    for _, shown in HOSTILE.values():
        assert html.escape(shown) in page
    assert "explain: ⟨U+001B⟩[2J&lt;script&gt;⟨U+202E⟩" in page and "n⟨U+0007⟩" in page
    assert "sub⟨U+2066⟩title" in page and "row⟨U+001B⟩]0;pwn⟨U+0007⟩" in page


def test_records_and_heatmap_labels_are_visible():
    tokens = [_bytelevel("a\x1b"), _bytelevel(" b\u202e")]  # the Ġ of " b" shows the scheme
    record = to_visualization_records(torch.ones(1, 2), [tokens], torch.tensor([0.5]), ["POS\u202e"], method="m\x07")[0]
    assert record.raw_input_ids == ["a⟨U+001B⟩", "b⟨U+202E⟩"] and record.pred_class == "POS⟨U+202E⟩"
    assert "m⟨U+0007⟩" in record.attr_class
    fig = plot_layer_heatmap(torch.ones(1, 2), tokens, layer_labels=["l\u202e"], title="t\x1b")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a⟨U+001B⟩", "b⟨U+202E⟩"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["l⟨U+202E⟩"] and ax.get_title() == "t⟨U+001B⟩"
