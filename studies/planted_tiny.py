r"""A tiny BERT classifier trained in seconds on data with a planted marker token, and where the
dataset summary ranks the marker (``run_tiny``, one of the two runs that choose the summary's defaults).

Vocabulary: 0 [PAD], 1 [CLS], 2 [SEP], 3 [MASK], 4 "zebra" (the marker), 5..98 "w5".."w98".
Each example has a random label; about a third of its words come from a class's own words
(10..14 for class 1, 20..24 for class 0), the rest from 30..98. In a share of the examples the
marker is inserted and the label set to 1: the marker alone decides those labels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch
import transformers as T

from captum_normxlogit.utils import pad_batch

__all__ = ["MARKER", "NAMES", "Planted", "accuracy", "make_data", "run_tiny", "tokenizer", "train_planted"]

PAD, CLS, SEP, MASK, MARKER = 0, 1, 2, 3, 4
VOCAB = 99
ID2LABEL = {0: "NEGATIVE", 1: "POSITIVE"}
NAMES = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "zebra"] + [f"w{i}" for i in range(5, VOCAB)]


@dataclass
class Planted:
    r"""The trained model and its held-out examples (ids, tokens, labels, which carry the marker)."""

    model: torch.nn.Module
    input_ids: List[List[int]]
    tokens: List[List[str]]
    labels: List[int]
    marked: List[bool]


def make_data(n: int, share: float, seed: int) -> Tuple[List[List[int]], List[int], List[bool]]:
    r"""``n`` examples (ids with [CLS]/[SEP]), their labels and whether the marker was planted."""
    rng = random.Random(seed)
    rows, labels, marked = [], [], []
    for _ in range(n):
        y = rng.randint(0, 1)
        own = range(10, 15) if y == 1 else range(20, 25)
        words = [
            rng.choice(own) if rng.random() < 0.35 else rng.randint(30, VOCAB - 1) for _ in range(rng.randint(5, 10))
        ]
        mark = rng.random() < share
        if mark:
            words.insert(rng.randint(0, len(words)), MARKER)
            y = 1
        rows.append([CLS, *words, SEP])
        labels.append(y)
        marked.append(mark)
    return rows, labels, marked


def _pad(rows: List[List[int]]) -> Tuple[torch.Tensor, torch.Tensor]:
    return pad_batch(rows, PAD)


def train_planted(
    share: float = 0.25, n_train: int = 800, n_test: int = 300, steps: int = 150, seed: int = 0
) -> Planted:
    r"""Train the tiny classifier (seeded; a few seconds on one thread) and draw its held-out examples."""
    torch.manual_seed(seed)
    config = T.BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=32,
        id2label=ID2LABEL,
        label2id={v: k for k, v in ID2LABEL.items()},
        pad_token_id=PAD,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = T.BertForSequenceClassification(config)
    rows, labels, _ = make_data(n_train, share, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = random.Random(seed)
    model.train()
    for _ in range(steps):
        pick = rng.sample(range(n_train), 32)
        ids, mask = _pad([rows[i] for i in pick])
        loss = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([labels[i] for i in pick])).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    test_rows, test_labels, test_marked = make_data(n_test, share, seed + 1)
    return Planted(model, test_rows, [[NAMES[i] for i in r] for r in test_rows], test_labels, test_marked)


def accuracy(model: torch.nn.Module, rows: List[List[int]], labels: List[int]) -> float:
    r"""Share of ``rows`` the model labels as ``labels``."""
    with torch.no_grad():
        ids, mask = _pad(rows)
        pred = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)
    return float((pred == torch.tensor(labels)).float().mean())


def tokenizer() -> Any:
    r"""A word-level BERT tokenizer over :data:`NAMES` (one token per word)."""
    return T.BertTokenizer(vocab={w: i for i, w in enumerate(NAMES)}, do_lower_case=False, model_max_length=32)


def run_tiny(output_dir: str, *, folder: str = "out/dataset/tiny-attributions") -> Dict[str, Any]:
    r"""Train the tiny model on one thread, run ``attribute_dataset`` on its held-out examples, and
    write the marker's rank for every statistic and minimum count (``tiny_shortcut_marker_rank``).

    Returns:
        dict: ``ranks`` (table) and the written ``paths``.
    """
    import pandas as pd

    from captum_normxlogit.dataset import attribute_dataset
    from captum_normxlogit.methods import NORMXLOGIT
    from studies.common import MIN_COUNTS, marker_rank_rows, write_table

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the test suite trains it: the seeded run gives the same model
    try:
        planted = train_planted()
    finally:
        torch.set_num_threads(threads)
    texts = [" ".join(tokens[1:-1]) for tokens in planted.tokens]
    handle = attribute_dataset(planted.model, tokenizer(), texts, folder, resume=False, progress=False)
    rows = []
    for min_count in MIN_COUNTS:
        where = f"{len(texts)} sentences, min_count {min_count}"
        rows += marker_rank_rows(handle.summary(min_count=min_count), NAMES[MARKER], where, NORMXLOGIT.name)
    ranks = pd.DataFrame(rows)
    paths = write_table(
        Path(output_dir),
        "tiny_shortcut_marker_rank",
        ranks,
        f"Rank of the planted marker '{NAMES[MARKER]}' for POSITIVE, tiny BERT trained here",
    )
    return {"ranks": ranks, "paths": paths}
