r"""Readable token strings, and sub-word tokens merged into words with their scores summed.

The views' names for the one token-text rule, which lives in
:mod:`captum_normxlogit._utils.tokens` (the dataset statistics use it too);
see there for the merging rule by tokenizer scheme.
"""

from captum_normxlogit._utils.tokens import (
    SCHEMES,
    detect_scheme,
    display_token,
    merge_subwords,
    visible_text,
    word_groups,
)

__all__ = ["SCHEMES", "detect_scheme", "display_token", "merge_subwords", "visible_text", "word_groups"]
