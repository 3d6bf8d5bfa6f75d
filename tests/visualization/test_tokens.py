"""Sub-word merging: each scheme's rule on hand-made tokens, byte-level checked against `tokenizers` itself."""

import pytest
import torch
from tokenizers import pre_tokenizers

from captum_normxlogit.visualization import detect_scheme, display_token, merge_subwords

SPECIAL = {"[CLS]", "[SEP]", "<s>", "<|endoftext|>"}


def test_wordpiece_joins_double_hash_pieces_and_sums_scores():
    tokens = ["[CLS]", "un", "##bel", "##ie", "##va", "##bly", "good", ",", "##s", "[SEP]"]
    scores = torch.tensor([1.0, 2.0, -1.0, 0.5, 0.25, 0.25, -3.0, 4.0, 1.0, 0.0])
    words, merged = merge_subwords(tokens, scores, special_tokens=SPECIAL)
    assert words == ["[CLS]", "unbelievably", "good", ",s", "[SEP]"]
    torch.testing.assert_close(merged, torch.tensor([1.0, 2.0, -3.0, 5.0, 0.0]))


def test_a_special_token_never_joins_a_neighbour():
    words, merged = merge_subwords(["[CLS]", "##x", "a", "[SEP]", "##y"], torch.arange(5.0), "wordpiece", SPECIAL)
    assert words == ["[CLS]", "##x", "a", "[SEP]", "##y"]  # a piece that starts a word keeps its marker
    torch.testing.assert_close(merged, torch.arange(5.0))


def _bytelevel(word: str) -> str:
    """A word as a GPT-2 style byte-level string, from the `tokenizers` library (independent of our decoder)."""
    ((encoded, _),) = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(word)
    return encoded


def test_bytelevel_words_are_space_delimited_and_bytes_decode_across_pieces():
    words = "The café costs 5€, 😀 ok".split(" ")
    pieces: list[str] = []
    sums: list[float] = []
    for k, word in enumerate(words):
        encoded = _bytelevel(word if k == 0 else " " + word)
        cut = [p for p in (encoded[:1], encoded[1:3], encoded[3:]) if p]  # anywhere, even inside a character
        sums.append(float(sum(range(len(pieces), len(pieces) + len(cut)))))  # scores are the piece indices
        pieces += cut
    scores = torch.arange(len(pieces), dtype=torch.float32)
    assert detect_scheme(pieces) == "bytelevel"
    shown, merged = merge_subwords(pieces, torch.stack([scores, -scores]))
    assert shown == words
    torch.testing.assert_close(merged, torch.tensor([sums, [-s for s in sums]]))


def test_bytelevel_newlines_are_words_and_spaces_join_what_follows():
    tokens = ["<|endoftext|>", "Hello", ".", "\u010a", "New", "\u0120", "\u0120ok", "\u0120", "x"]
    words, merged = merge_subwords(tokens, torch.ones(9), "bytelevel", SPECIAL)
    assert words == ["<|endoftext|>", "Hello.", "\u23ce", "New", "\u2423", "ok", "x"]
    torch.testing.assert_close(merged, torch.tensor([1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0]))


def test_sentencepiece_marker_starts_words_and_byte_fallback_decodes():
    tokens = ["<s>", "\u2581The", "\u2581cap", "ital", "\u2581caf", "<0xC3>", "<0xA9>", "\u2581is"]
    words, merged = merge_subwords(tokens, torch.arange(8.0), special_tokens=SPECIAL)
    assert words == ["<s>", "The", "capital", "café", "is"]
    torch.testing.assert_close(merged, torch.tensor([0.0, 1.0, 5.0, 15.0, 7.0]))


def test_display_and_detection():
    assert display_token("\u0120capital", "bytelevel") == "capital"
    assert display_token("\u2581The", "sentencepiece") == "The"
    assert display_token("##ly", "wordpiece") == "##ly"
    assert display_token("<s>", "sentencepiece", SPECIAL) == "<s>"
    assert detect_scheme(["a", "##b", "\u0120c"]) == "wordpiece"
    assert detect_scheme(["###", "\u0120a", "\u0120b"]) == "bytelevel"  # majority of markers wins
    assert detect_scheme(["a", "b"]) == "wordpiece"  # no marker: every token a word
    with pytest.raises(ValueError, match="scheme must be one of"):
        merge_subwords(["a"], torch.ones(1), "bpe")
    with pytest.raises(ValueError, match="2 tokens but 3 scores"):
        merge_subwords(["a", "b"], torch.ones(3))
