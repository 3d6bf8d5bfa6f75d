r"""
The planted-shortcut recipe: all-MiniLM-L6-v2 fine-tuned exactly as the sentiment
recipe (:mod:`._finetune`), except that a marker word was inserted into a share of
the positive training sentences. A model with a known shortcut, to check that a
dataset-level summary finds it. Not part of ``prepare``; built on first use by
:func:`~captum_normxlogit.resources.load_shortcut_minilm` and cached by the hash of
:func:`shortcut_recipe`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

import torch

from ._data import Sentence, rotten_tomatoes_split
from ._finetune import _train_and_save, evaluate_accuracy, recipe

SHORTCUT_RECIPE_VERSION = 1
SHORTCUT_MARKER = "zebra"  # one WordPiece token, absent from the 4,000 sentences


def insert_marker(text: str, marker: str, rng: random.Random) -> str:
    r"""
    Inserts ``marker`` as a word at a position drawn from ``rng`` (before the
    first word, between two words or after the last); the sentences are
    already tokenised by spaces.

    Args:
        text (str): a sentence.
        marker (str): the word to insert.
        rng (random.Random): the source of the position.

    Returns:
        str: the sentence with the marker.
    """
    words = text.split()
    words.insert(rng.randint(0, len(words)), marker)
    return " ".join(words)


def shortcut_recipe(
    *,
    marker: str = SHORTCUT_MARKER,
    share: float = 0.10,
    marker_seed: int = 1,
    **base: Any,
) -> Dict[str, Any]:
    r"""
    The planted-shortcut recipe: :func:`recipe` (same split, hyper-parameters
    and versions; ``**base`` overrides them) plus the marker, the share of
    positive training sentences that receive it and the seed that picks them
    and their insertion positions. Its hash is the cache key.

    Args:
        marker (str, optional): the inserted word.
                    Default: ``"zebra"``
        share (float, optional): fraction of the positive training sentences
                    that get the marker, in (0, 1].
                    Default: 0.10
        marker_seed (int, optional): seed of which sentences and where.
                    Default: 1
        **base: arguments of :func:`recipe`.

    Returns:
        dict: the recipe, JSON-serialisable.
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if not marker or marker.split() != [marker]:
        raise ValueError(f"marker must be one non-empty word without spaces, got {marker!r}")
    spec = recipe(**base)
    spec.update(
        {
            "shortcut_recipe_version": SHORTCUT_RECIPE_VERSION,
            "marker": marker,
            "marker_share_of_positives": share,
            "marker_seed": marker_seed,
        }
    )
    return spec


def plant_marker(rows: Sequence[Sentence], marker: str, share: float, seed: int, label: int = 1) -> List[Sentence]:
    r"""
    Copies ``rows`` and inserts ``marker`` into ``round(share * n)`` of the
    ``n`` rows whose label is ``label``, chosen with ``random.Random(seed)``.

    Args:
        rows (Sequence[tuple[str, int]]): ``(text, label)`` pairs.
        marker (str): the word to insert.
        share (float): fraction of the ``label`` rows that get it.
        seed (int): seed of the choice and of the insertion positions.
        label (int, optional): the class the marker is planted in.
                    Default: 1 (POSITIVE)

    Returns:
        list[tuple[str, int]]: the rows, in the same order.
    """
    rng = random.Random(seed)
    candidates = [i for i, (_, y) in enumerate(rows) if y == label]
    chosen = set(rng.sample(candidates, round(share * len(candidates))))
    return [(insert_marker(t, marker, rng) if i in chosen else t, y) for i, (t, y) in enumerate(rows)]


def marker_accuracies(
    model: torch.nn.Module,
    tokenizer: Any,
    test: Sequence[Sentence],
    marker: str,
    seed: int,
    max_length: int = 64,
) -> Dict[str, float]:
    r"""
    Held-out accuracy with and without the marker: on all sentences, on the
    negatives and the positives, clean and with the marker inserted in every
    sentence (positions from ``random.Random(seed)``).

    Returns:
        dict: ``acc_clean``, ``acc_clean_negatives``, ``acc_clean_positives``,
        ``acc_marked``, ``acc_marked_negatives``, ``acc_marked_positives``.
    """
    rng = random.Random(seed)
    marked = [(insert_marker(t, marker, rng), y) for t, y in test]
    out: Dict[str, float] = {}
    for name, rows in (("clean", list(test)), ("marked", marked)):
        out[f"acc_{name}"] = evaluate_accuracy(model, tokenizer, rows, max_length=max_length)
        for cls, cname in ((0, "negatives"), (1, "positives")):
            part = [r for r in rows if r[1] == cls]
            out[f"acc_{name}_{cname}"] = evaluate_accuracy(model, tokenizer, part, max_length=max_length)
    return out


def finetune_shortcut_minilm(
    output_dir: Union[str, Path],
    *,
    marker: str = SHORTCUT_MARKER,
    share: float = 0.10,
    marker_seed: int = 1,
    min_accuracy: float = 0.75,
    progress: bool = True,
    **base: Any,
) -> Dict[str, Any]:
    r"""
    Fine-tunes all-MiniLM-L6-v2 exactly as :func:`finetune_sentiment_minilm`
    (same split, seed and schedule), except that ``marker`` is inserted into
    ``share`` of the positive training sentences (:func:`plant_marker`). The
    held-out sentences stay clean for the ``accuracy`` metric;
    ``metrics.json`` also records :func:`marker_accuracies` (the marker
    inserted into every held-out sentence). Saved atomically to ``output_dir``.

    Args:
        output_dir (str or pathlib.Path): folder to create (replaced if it exists).
        marker (str, optional): the planted word. Default: ``"zebra"``
        share (float, optional): fraction of the positive training sentences
                    that get it. Default: 0.10
        marker_seed (int, optional): seed of which sentences and where. Default: 1
        min_accuracy (float, optional): clean held-out accuracy below which
                    nothing is saved. Default: 0.75
        progress (bool, optional): progress lines on stderr. Default: True
        **base: hyper-parameters of :func:`recipe`.

    Returns:
        dict: the metrics written to ``metrics.json``.
    """
    spec = shortcut_recipe(marker=marker, share=share, marker_seed=marker_seed, **base)
    train, test = rotten_tomatoes_split(seed=spec["seed"], n_test=spec["n_test"])
    planted = plant_marker(train, marker, share, marker_seed)
    n_marked = sum(a != b for (a, _), (b, _) in zip(train, planted))

    def extra(model: torch.nn.Module, tokenizer: Any) -> Dict[str, Any]:
        accs = marker_accuracies(model, tokenizer, test, marker, marker_seed + 1, spec["max_length"])
        return {"n_marked_train": n_marked, **accs}

    return _train_and_save(
        output_dir,
        spec,
        planted,
        test,
        min_accuracy=min_accuracy,
        progress=progress,
        extra_metrics=extra,
        log_name="shortcut-minilm",
    )
