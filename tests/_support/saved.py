"""Tiny seeded models with small local tokenizers, built in memory and saved to folders for subprocess runs."""

from __future__ import annotations

import pathlib
from typing import Any

import torch
import transformers as T

from tests._support.tokenizers import bytelevel_bpe

WORDS = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] a the movie film is gorgeous witty dull plot thin , . ! un ##bel ##ie "
    "##va ##bly good bad story and but not very"
).split()
LABELS = {0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"}
SMALL: dict[str, Any] = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=24,
    initializer_range=0.2,
)
SENTENCES = [
    "a gorgeous , witty movie .",
    "the plot is thin .",
    "dull film !",
    "a very good story and a bad plot .",
    "not witty",
    "unbelievably dull , but the film is good .",
    "the movie",
    "bad !",
    "good good good",
    "a thin plot but a gorgeous film .",
    "witty and very good",
    "the story is not good .",
]


# The explain-command tests' vocabulary: the one above without "not" and "very" (their scores and the
# subword merges they check were written against it), and tokenizers without a length limit.
CLI_WORDS = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] a the movie film is gorgeous witty dull plot thin , . ! un ##bel ##ie "
    "##va ##bly good bad story and but"
).split()


def cli_bert_config(**kw) -> T.BertConfig:
    """A small BERT config over `CLI_WORDS`, without dropout (kw: e.g. ``id2label=LABELS``)."""
    return T.BertConfig(
        vocab_size=len(CLI_WORDS),
        pad_token_id=0,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        **SMALL,
        **kw,
    )


def cli_wordpiece() -> T.BertTokenizer:
    return T.BertTokenizer(vocab={w: i for i, w in enumerate(CLI_WORDS)})


def cli_bytelevel() -> T.PreTrainedTokenizerFast:
    return bytelevel_bpe()


def wordpiece() -> T.BertTokenizer:
    return T.BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}, model_max_length=24)


def bytelevel() -> T.PreTrainedTokenizerFast:
    return bytelevel_bpe(model_max_length=24)


def _bert(**kw) -> T.BertConfig:
    return T.BertConfig(
        vocab_size=len(WORDS), pad_token_id=0, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **SMALL, **kw
    )


def classifier(seed: int = 0):
    torch.manual_seed(seed)
    return T.BertForSequenceClassification(_bert(id2label=LABELS)).eval()


def regression(seed: int = 1):
    torch.manual_seed(seed)
    return T.BertForSequenceClassification(_bert(num_labels=1)).eval()


def masked_lm(seed: int = 2):
    torch.manual_seed(seed)
    return T.BertForMaskedLM(_bert()).eval()


def causal_lm(tokenizer, seed: int = 3):
    torch.manual_seed(seed)
    config = T.LlamaConfig(vocab_size=len(tokenizer), num_key_value_heads=2, pad_token_id=0, **SMALL)
    return T.LlamaForCausalLM(config).eval()


def save(folder: pathlib.Path, model, tokenizer) -> str:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


# 36 rows: the sentences alone and with two endings (the dataset resume and integrity tests).
DATASET_TEXTS = [f"{s} {extra}" for extra in ("", "good", "bad plot") for s in SENTENCES]


def load_classifier(folder) -> tuple:
    r"""``(model in eval mode, tokenizer)`` from a folder written by :func:`save`."""
    return T.AutoModelForSequenceClassification.from_pretrained(folder).eval(), T.AutoTokenizer.from_pretrained(folder)


def shard_names(out: pathlib.Path) -> list:
    r"""The Parquet shard file names in a dataset output folder, sorted."""
    return sorted(p.name for p in out.glob("part-*.parquet"))
