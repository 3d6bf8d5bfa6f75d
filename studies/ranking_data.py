r"""Cached inputs of the candidate-ranking study (:mod:`studies.ranking`): attribution frames
with every layer's NormXLogit scores, and occlusion tables of every word of a class.

Everything is cached under ``cache_dir()/studies/ranking`` (outside the repository; the
corpus text is never written to the results): the attribution folders by
``attribute_dataset``'s own resume, the occlusion tables as CSV keyed by their settings.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from captum_normxlogit.dataset import attribute_dataset
from captum_normxlogit.dataset.ablation import ablation_effects
from captum_normxlogit.dataset.summary import DatasetSummary, summarize
from captum_normxlogit.resources import cache_dir

__all__ = [
    "LAYER_COLUMNS",
    "OCCLUSION_CAP",
    "attribution_frame",
    "occlusion_path",
    "occlusion_table",
    "split_rows",
    "study_cache",
]

OCCLUSION_CAP = 60  # examples per (class, word), drawn with seed 0, as ablation.py's studies
LAYER_COLUMNS = "layer{}"


def study_cache(override: Optional[str] = None) -> Path:
    r"""The study's cache folder (created)."""
    path = Path(override) if override else cache_dir() / "studies" / "ranking"
    path.mkdir(parents=True, exist_ok=True)
    return path


def split_rows(n: int, seed: int = 0) -> Tuple[List[int], List[int]]:
    r"""Two seeded random halves of ``range(n)``: ``(choose, check)``. (The RT file is sorted
    by label, so a first/second-half split would give one gold label per half.)"""
    order = random.Random(seed).sample(range(n), n)
    return sorted(order[: n // 2]), sorted(order[n // 2 :])


def attribution_frame(model: Any, tokenizer: Any, texts: Sequence[str], folder: Path) -> Tuple[Any, float]:
    r"""``attribute_dataset(layers="all")`` on ``texts`` (resumed when cached), as a table with
    one ``layer{k}`` column per hidden state besides ``scores``; and the pass's seconds
    (from the first, uncached run, stored beside it)."""
    timing = folder.parent / (folder.name + ".seconds.json")
    start = time.perf_counter()
    handle = attribute_dataset(
        model, tokenizer, list(texts), folder, layers="all", max_length=64, truncation=True, progress=False
    )
    if not timing.exists():
        timing.write_text(json.dumps({"seconds": time.perf_counter() - start}))
    frame = handle.to_pandas().sort_values("index", kind="mergesort").reset_index(drop=True)
    n_layers = len(frame["layer_scores"].iloc[0])
    for k in range(n_layers):
        frame[LAYER_COLUMNS.format(k)] = [np.asarray(ls[k], dtype=np.float64) for ls in frame["layer_scores"]]
    frame["layers_sum"] = [np.sum(np.stack(list(ls)), axis=0) for ls in frame["layer_scores"]]
    return frame.drop(columns=["layer_scores"]), float(json.loads(timing.read_text())["seconds"])


def _key(payload: Dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def occlusion_path(cache: Path, name: str, n: int, min_count: int, cap: Optional[int], contractions: bool) -> Path:
    r"""Where :func:`occlusion_table` caches the table of these settings."""
    return cache / f"occlusion-{name}-{_key({'n': n, 'm': min_count, 'cap': cap, 'c': contractions})}.csv"


def occlusion_table(
    model: Any,
    tokenizer: Any,
    summary: DatasetSummary,
    cache: Path,
    name: str,
    *,
    min_count: int,
    cap: Optional[int] = OCCLUSION_CAP,
    reuse: Optional[Any] = None,
) -> Any:
    r"""Occlusion effect of every non-special word with ``count >= min_count`` in each class
    (``ablation_effects``, ``[MASK]``, at most ``cap`` examples per word), cached as CSV.

    ``reuse`` (a table for the same rows without contraction merging) supplies the words
    whose positions merging does not change, so only the others are measured.
    """
    import pandas as pd

    path = occlusion_path(cache, name, len(summary.frame), min_count, cap, summary.contractions)
    if path.exists():
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    label2id = {v: int(k) for k, v in model.config.id2label.items()}
    items: Dict[str, List[str]] = {}
    for cls in summary.classes:
        items[cls] = summary.top(cls, None, statistic="mean", min_count=min_count)["item"].tolist()
    kept = None
    if reuse is not None:
        touched = {p for item in _contraction_items(summary) for p in item}
        kept = reuse[~reuse["item"].isin(touched)]
        items = {
            c: [w for w in ws if w in touched or w not in set(kept[kept["class"] == c]["item"])]
            for c, ws in items.items()
        }
    start = time.perf_counter()
    effects = ablation_effects(
        model,
        summary,
        items,
        class_ids=label2id,
        replacement_id=tokenizer.mask_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_examples=cap,
        seed=0,
    )
    effects["seconds"] = time.perf_counter() - start
    if kept is not None:
        wanted = {
            (c, w)
            for c, ws in summary.classes.items()
            for w in summary.top(c, None, statistic="mean", min_count=min_count)["item"]
        }
        kept = kept[[(c, w) in wanted for c, w in zip(kept["class"], kept["item"])]]
        effects = pd.concat([kept, effects], ignore_index=True)
    effects.to_csv(path, index=False)
    return effects


def _contraction_items(summary: DatasetSummary) -> List[Tuple[str, ...]]:
    r"""For every merged word (``doesn't``), the items it joins and the merged word itself."""
    out: List[Tuple[str, ...]] = []
    for item in summary.table.loc[summary.table["level"] == "word", "item"].unique():
        parts = str(item).split("'")
        if len(parts) == 2 and parts[0] and parts[1]:
            out.append((str(item), parts[0], "'", parts[1]))
    return out


def summaries_for(
    frame: Any, columns: Sequence[str], specials: Sequence[str], **kwargs: Any
) -> Dict[str, DatasetSummary]:
    r"""One summary per score column."""
    return {c: summarize(frame, score_column=c, special_tokens=specials, **kwargs) for c in columns}
