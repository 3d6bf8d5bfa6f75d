r"""Readable token strings, and sub-word tokens merged into words with their scores summed.

The merging rule, by tokenizer scheme (``scheme="auto"`` picks it from the
markers in the tokens, see :func:`detect_scheme`):

* ``"wordpiece"`` (BERT, MiniLM, DistilBERT, ELECTRA): a token starting with
  ``##`` continues the previous word. Punctuation is its own word, as the
  tokenizer's pre-tokenizer split it.
* ``"sentencepiece"`` (``▁`` marks a preceding space: ALBERT, XLM-R, T5,
  Llama-2, Gemma) and ``"bytelevel"`` (``Ġ`` / ``Ċ`` encode a space / newline:
  GPT-2, RoBERTa, Llama-3, SmolLM2, Qwen): a token whose text starts with
  whitespace starts a new word, any other token continues the previous one, so a
  word is what lies between spaces (``movie.`` is one word). A line break is
  a word of its own; a space-only token joins the piece that follows it
  unless that piece starts with a space too (then it stays alone, shown ``␣``).
* In every scheme a special token (``[CLS]``, ``<s>``, ``<|endoftext|>``...) is a
  word of its own and never joins a neighbour.

A word's score is the **sum** of its tokens' raw scores (attributions are
additive over the parts of an input), computed before any colour scaling.

Every string a view shows passes through :func:`visible_text`: control
characters (terminal escape sequences start with one), bidi overrides and
isolates, zero-width and other format characters would act on a terminal or a
page, or hide, so each is shown as a visible ``⟨U+XXXX⟩`` placeholder instead.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Collection, Dict, Iterable, List, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ["SCHEMES", "detect_scheme", "display_token", "merge_subwords", "visible_text", "word_groups"]

SCHEMES = ("auto", "wordpiece", "sentencepiece", "bytelevel")
_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
# Unicode categories a view never prints as they are: controls (C0, DEL, C1: ESC starts terminal
# sequences), format characters (bidi embeddings, overrides and isolates, zero-width characters,
# soft hyphen, BOM, tags), line / paragraph separators and lone surrogates (not encodable as UTF-8).
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_KEPT = frozenset("\n\t")


def visible_text(text: str) -> str:
    r"""``text`` with every character that a terminal or a browser would act on, or
    that would not show, replaced by a visible ``⟨U+XXXX⟩`` placeholder.

    Replaced: control characters but newline and tab (ESC ``U+001B``, which
    starts terminal escape sequences, BEL, CR, DEL, the C1 range), format
    characters (bidi overrides ``U+202A``–``U+202E``, isolates
    ``U+2066``–``U+2069``, marks ``U+200E``/``U+200F``, zero-width
    ``U+200B``–``U+200D``, ``U+2060``, BOM ``U+FEFF``, soft hyphen), line and
    paragraph separators and lone surrogates. Everything printable is kept;
    markup such as ``<b>`` is left to the HTML writer's escaping.

    Args:
        text (str): Any string.

    Returns:
        str
    """
    if text.isprintable():  # the common case: nothing to replace
        return text
    return "".join(
        f"\u27e8U+{ord(ch):04X}\u27e9" if ch not in _KEPT and unicodedata.category(ch) in _HIDDEN_CATEGORIES else ch
        for ch in text
    )


@lru_cache(maxsize=1)
def _byte_decoder() -> Dict[str, int]:
    r"""Inverse of GPT-2's byte-to-unicode table (printable bytes map to
    themselves, the 68 others to U+0100 onwards, in byte order)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[chr(byte)] = byte
        else:
            table[chr(256 + extra)] = byte
            extra += 1
    return table


def detect_scheme(tokens: Iterable[str]) -> str:
    r"""Guess the sub-word scheme from the markers present.

    Args:
        tokens (iterable of str): Token strings, or a whole vocabulary
            (``tokenizer.get_vocab()``) for a certain answer.

    Returns:
        str: the scheme whose marker is the most frequent: ``"wordpiece"``
        (tokens starting with ``##``), ``"sentencepiece"`` (containing ``▁``)
        or ``"bytelevel"`` (containing ``Ġ`` or ``Ċ``); ``"wordpiece"`` when
        no token has a marker (every token is then a word of its own).
    """
    counts = {"wordpiece": 0, "sentencepiece": 0, "bytelevel": 0}
    for token in tokens:
        if token.startswith("##") and len(token) > 2:
            counts["wordpiece"] += 1
        if "\u2581" in token:
            counts["sentencepiece"] += 1
        if "\u0120" in token or "\u010a" in token:
            counts["bytelevel"] += 1
    best = max(counts, key=lambda scheme: counts[scheme])  # ties keep the first: wordpiece
    return best if counts[best] > 0 else "wordpiece"


def _raw_text(token: str, scheme: str) -> bytes:
    r"""A token's text as bytes, markers turned back into the spaces they stand for."""
    if scheme == "bytelevel":
        table = _byte_decoder()
        if all(ch in table for ch in token):
            return bytes(table[ch] for ch in token)
        return token.encode("utf-8")
    if scheme == "sentencepiece":
        byte = _BYTE_FALLBACK.match(token)
        if byte:
            return bytes([int(byte.group(1), 16)])
        return token.replace("\u2581", " ").encode("utf-8")
    return token.encode("utf-8")


def _readable(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").strip(" ")
    if not text:
        return "\u2423"  # ␣: a space token stays visible
    text = text.replace("\r\n", "\u23ce").replace("\n", "\u23ce").replace("\t", "\u21e5")  # ⏎, ⇥
    return visible_text(text)


def _resolve(scheme: str, tokens: Sequence[str]) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}.")
    return detect_scheme(tokens) if scheme == "auto" else scheme


def display_token(token: str, scheme: str = "auto", special_tokens: Collection[str] = ()) -> str:
    r"""A token as a person should read it.

    Byte-level tokens are decoded (``Ġcafé``'s bytes → ``café``), ``▁`` is
    dropped, WordPiece's ``##`` is kept (it shows the piece continues a word);
    a space-only token shows as ``␣`` and a newline as ``⏎``; control, bidi
    and zero-width characters show as ``⟨U+XXXX⟩`` (:func:`visible_text`).
    Special tokens are otherwise returned unchanged.

    Args:
        token (str): One token string, as ``tokenizer.convert_ids_to_tokens`` gives it.
        scheme (str, optional): One of :data:`SCHEMES`. Default: ``"auto"``
        special_tokens (collection of str, optional): Left as they are. Default: ()

    Returns:
        str
    """
    if token in special_tokens:
        return visible_text(token)
    return _readable(_raw_text(token, _resolve(scheme, [token])))


def word_groups(tokens: Sequence[str], scheme: str = "auto", special_tokens: Collection[str] = ()) -> List[List[int]]:
    r"""Which token positions form each word, by the rule in this module's docstring.

    Args:
        tokens (sequence of str): Token strings of one example.
        scheme (str, optional): One of :data:`SCHEMES`. Default: ``"auto"``
        special_tokens (collection of str, optional): Tokens that are always
            a word of their own. Default: ()

    Returns:
        list of list of int: consecutive token indices, one list per word.
    """
    scheme = _resolve(scheme, tokens)
    groups: List[List[int]] = []
    previous_closed = True  # the previous token ends a word (start, special or whitespace)
    for i, token in enumerate(tokens):
        special = token in special_tokens
        if scheme == "wordpiece":
            starts = special or previous_closed or not token.startswith("##")
            closes = special
        else:
            text = _raw_text(token, scheme).decode("utf-8", errors="replace")
            starts = special or previous_closed or text[:1].isspace()
            # A line break ends a word; a run of spaces joins the word that follows it, as in
            # byte-level pre-tokenization (" café" split into " ", "caf", "é" is one word).
            closes = special or (text.strip() == "" and ("\n" in text or "\r" in text))
        if starts or not groups:
            groups.append([i])
        else:
            groups[-1].append(i)
        previous_closed = closes
    return groups


def merge_subwords(
    tokens: Sequence[str],
    scores: Tensor,
    scheme: str = "auto",
    special_tokens: Collection[str] = (),
) -> Tuple[List[str], Tensor]:
    r"""Merge sub-word tokens into words and sum their scores.

    Args:
        tokens (sequence of str): ``T`` token strings of one example.
        scores (Tensor): ``(T,)`` raw scores, or ``(R, T)`` for ``R`` rows
            (methods, layers) over the same tokens.
        scheme (str, optional): One of :data:`SCHEMES`. Default: ``"auto"``
        special_tokens (collection of str, optional): Never merged. Default: ()

    Returns:
        *(list of str, Tensor)*: the ``W`` readable words and their scores,
        ``(W,)`` or ``(R, W)``, each the sum of its tokens' raw scores (sign
        kept).
    """
    if scores.shape[-1] != len(tokens):
        raise ValueError(f"{len(tokens)} tokens but {scores.shape[-1]} scores; pass one score per token.")
    scheme = _resolve(scheme, tokens)
    groups = word_groups(tokens, scheme, special_tokens)
    words = []
    for group in groups:
        if len(group) == 1 and tokens[group[0]] in special_tokens:
            words.append(visible_text(tokens[group[0]]))
        elif scheme == "wordpiece":
            pieces = [tokens[i][2:] if k and tokens[i].startswith("##") else tokens[i] for k, i in enumerate(group)]
            words.append(visible_text("".join(pieces)))
        else:
            words.append(_readable(b"".join(_raw_text(tokens[i], scheme) for i in group)))
    index = torch.tensor([w for w, group in enumerate(groups) for _ in group], device=scores.device)
    summed = torch.zeros(*scores.shape[:-1], len(groups), dtype=scores.dtype, device=scores.device)
    summed.index_add_(summed.dim() - 1, index, scores)
    return words, summed
