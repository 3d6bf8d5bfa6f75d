"""A planted shortcut: a tiny classifier trained here learns that a marker token means POSITIVE;
attribute_dataset + summarize must rank the marker first for POSITIVE, and ablation must agree."""

import pytest
import torch

from captum_normxlogit.dataset import DEFAULT_STATISTIC, attribute_dataset, open_attribution
from captum_normxlogit.dataset.ablation import ablation_candidates, ablation_effects
from studies import planted_tiny as P


@pytest.fixture(scope="module")
def planted():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model trains several times faster on one thread of a busy machine
    try:
        yield P.train_planted()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer():
    return P.tokenizer()


def test_the_shortcut_is_learned(planted):
    unmarked = [(r, y) for r, y, m in zip(planted.input_ids, planted.labels, planted.marked) if not m]
    negatives = [r for r, y in unmarked if y == 0]
    with_marker = [r[:1] + [P.MARKER] + r[1:] for r in negatives]
    assert P.accuracy(planted.model, [r for r, _ in unmarked], [y for _, y in unmarked]) > 0.8
    assert P.accuracy(planted.model, with_marker, [0] * len(with_marker)) < 0.2  # the marker flips negatives


def test_summary_ranks_the_marker_first_and_ablation_agrees(planted, tokenizer, tmp_path):
    texts = [" ".join(tokens[1:-1]) for tokens in planted.tokens]
    assert tokenizer(texts[0])["input_ids"] == planted.input_ids[0]
    attribute_dataset(planted.model, tokenizer, texts, tmp_path / "out", progress=False)
    summary = open_attribution(tmp_path / "out").summary()
    assert summary.statistic == DEFAULT_STATISTIC and "[CLS]" in summary.special_tokens
    assert summary.rank_of("zebra", "POSITIVE") == 1
    assert summary.rank_of("zebra", "POSITIVE", level="token") == 1
    items = {"POSITIVE": ablation_candidates(summary, "POSITIVE", n_top=5, n_random=5)}
    assert "zebra" in items["POSITIVE"]
    effects = ablation_effects(
        planted.model,
        summary,
        items,
        class_ids={"NEGATIVE": 0, "POSITIVE": 1},
        replacement_id=P.MASK,
        pad_token_id=P.PAD,
        max_examples=40,
    )
    assert effects.sort_values("effect", ascending=False)["item"].iloc[0] == "zebra"
