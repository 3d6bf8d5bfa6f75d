"""Fixtures shared by the whole suite; the helpers they are built from live in tests/_support/.

Each fixture is module-scoped: one fresh instance per test module, as when each module defined its own.
A module that needs a different model (e.g. a 2-label classifier) defines its own fixture of the same name.
"""

import pytest

from tests._support.tiny import bert_classifier, llama_lm
from tests._support.tokenizers import wordlevel


@pytest.fixture(scope="module")
def bert():
    """The tiny 3-label BERT classifier (`tests._support.tiny.bert_classifier()`), in eval mode."""
    return bert_classifier()


@pytest.fixture(scope="module")
def llama():
    """The tiny Llama causal LM (`tests._support.tiny.llama_lm()`), in eval mode."""
    return llama_lm()


@pytest.fixture(scope="module")
def tokenizer():
    """A word-level tokenizer over the tiny models' ids: ``"w17"`` is id 17 (`tests._support.tokenizers.wordlevel`)."""
    return wordlevel()
