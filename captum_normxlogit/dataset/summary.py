r"""Dataset-level explanations: which tokens and words a model leans on, per explained class.

Input is the table :func:`attribute_dataset` writes (``pandas.read_parquet(output_dir)``),
one row per example with ``tokens`` (``T`` strings), ``scores`` (``T`` floats) and
``target_label`` (the class each example was explained for; ``target`` when absent).
Rows with an ``error`` are counted and left out.

**Unit.** For each example and each *item* (a vocabulary token, or a word made of merged
sub-words by :func:`~captum_normxlogit.visualization.tokens.word_groups`), the item's
score in that example is the **sum** of the scores of all its occurrences there, the same
unit the ablation check removes (every occurrence at once). Special tokens ([CLS], [SEP],
BOS, ...) are items of their own, flagged ``special``, and never take part in an
example's normalisation or in its top item.

**Statistics** per (class, item), over the ``count`` examples of that class containing it:

* ``mean``: mean raw score; ``lcb``: its one-sided 95 % lower confidence bound,
  ``mean - 1.645 * std / sqrt(count)`` (NaN for ``count < 2``), a count-aware estimate
  that does not reward a high mean seen twice;
* ``mean_maxabs`` / ``lcb_maxabs``: the same of the score divided by the example's
  largest ``|score|`` over its non-special items (the HTML views' scale, in ``[-1, 1]``);
* ``mean_z`` / ``lcb_z``: the same of the score standardised within the example,
  ``(s - mean_e) / std_e`` over its non-special items: it removes a shift shared by all
  tokens of one example (for NormXLogit, the part of each token's logit that only says
  what the whole sentence says);
* ``top_share``: the share of those examples where the item has the highest score;
* ``contrast_z`` / ``lcb_contrast_z``: ``mean_z`` minus the item's *background*, its mean ``z``
  in the examples explained for the other classes, shrunk towards 0 by
  :data:`BACKGROUND_PRIOR` pseudo-examples (so a word never seen elsewhere keeps its
  ``mean_z``), and the one-sided 95 % lower bound of that difference. A word that scores
  alike whatever the class (punctuation, most function words) has a contrast near 0; no
  stop list is involved.

**Unit options.** ``unit="mean"`` takes the mean over an item's occurrences in one example
instead of the sum (a pair of quotes then counts once); ``contractions=True`` makes a word,
an apostrophe and a clitic (``doesn ' t``) one word, ``doesn't``, everywhere (statistics,
:func:`item_positions`, so ablation masks all three tokens).

The defaults, :data:`DEFAULT_STATISTIC` (``lcb_contrast_z``), :data:`DEFAULT_UNIT` (``mean``),
no contraction merging and :data:`DEFAULT_MIN_COUNT` (10), come from ``studies/ranking.py``
(``benchmarks/results/dataset/ranking_*``): on a random half of 2,000 Rotten-Tomatoes
sentences, the last-layer statistic and unit whose top 20 holds the most of the 10 words
with the largest occlusion effect (all 10 there, against 6.5 for the earlier ``mean_z`` of
summed repeats); checked on the other half and on the planted-shortcut models.
:data:`DEFAULT_CANDIDATES` (20) is the smallest K whose top K held at least 8 of those 10 in
each class. The minimum count is the count-aware part: words seen in fewer than 10 examples
of a class are not ranked by default (pass ``min_count=5`` to see them).
"""

from __future__ import annotations

import math
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from captum_normxlogit._utils.tokens import detect_scheme, display_token, merge_subwords, word_groups

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "DEFAULT_MIN_COUNT",
    "DEFAULT_STATISTIC",
    "DEFAULT_UNIT",
    "DEFAULT_CANDIDATES",
    "DEFAULT_CONTRACTIONS",
    "BACKGROUND_PRIOR",
    "LEVELS",
    "STATISTICS",
    "UNITS",
    "DatasetSummary",
    "guess_special_tokens",
    "item_positions",
    "summarize",
]

LEVELS = ("word", "token")
STATISTICS = (
    "mean",
    "lcb",
    "mean_maxabs",
    "lcb_maxabs",
    "mean_z",
    "lcb_z",
    "top_share",
    "contrast_z",
    "lcb_contrast_z",
)
UNITS = ("sum", "mean")
DEFAULT_STATISTIC = "lcb_contrast_z"  # chosen by studies.ranking.choose (see the module docstring)
DEFAULT_MIN_COUNT = 10
DEFAULT_UNIT = "mean"
DEFAULT_CONTRACTIONS = False
DEFAULT_CANDIDATES = 20  # the top K worth verifying by occlusion: recall >= 0.8 of the occlusion top 10
_Z95 = 1.6448536269514722  # one-sided 95 % normal quantile
BACKGROUND_PRIOR = 10  # pseudo-examples at 0 in a word's background (see the module docstring)
# A word, an apostrophe, then one of these: one word ("doesn ' t" -> "doesn't").
_CLITICS = frozenset({"t", "s", "re", "ve", "ll", "d", "m"})
_WORDLIKE = re.compile(r"^\w+$")
_SPECIAL = re.compile(r"^(\[[A-Z_]+\]|<\|[^<>|\s]+\|>|<(?!0x)[a-z/_]+>)$")


def guess_special_tokens(tokens: Sequence[str]) -> List[str]:
    r"""Special tokens by their look (``[CLS]``, ``<|im_end|>``, ``<s>``, ``</s>``), for a
    table that does not say which tokens are special. Pass the tokenizer's
    ``all_special_tokens`` instead whenever you have it.

    Returns:
        list of str: the distinct tokens that look special, in first-seen order.
    """
    return list(dict.fromkeys(t for t in tokens if _SPECIAL.match(t)))


def item_positions(
    tokens: Sequence[str],
    level: str,
    scheme: str,
    special_tokens: Collection[str],
    *,
    contractions: bool = DEFAULT_CONTRACTIONS,
) -> Dict[str, List[int]]:
    r"""Where each item of one example sits.

    Args:
        tokens (sequence of str): The example's ``T`` tokens.
        level (str): ``"word"`` (sub-words merged) or ``"token"``.
        scheme (str): Sub-word scheme (see :mod:`captum_normxlogit.visualization.tokens`).
        special_tokens (collection of str): Never merged.
        contractions (bool, optional): At word level, a word, an apostrophe and a clitic
            (``t``, ``s``, ``re``, ``ve``, ``ll``, ``d``, ``m``) are one item, ``doesn't``.
            Default: :data:`DEFAULT_CONTRACTIONS`

    Returns:
        dict of str to list of int: item (the readable word as ``merge_subwords`` shows
        it, or the token as ``display_token`` shows it) to every token position it
        covers, over all its occurrences, in order.
    """
    found = _items(tokens, level, scheme, special_tokens, contractions)
    return {item: positions for item, (positions, _) in found.items()}


def _merge_contractions(
    units: List[Tuple[str, List[int]]], special_tokens: Collection[str]
) -> List[Tuple[str, List[int]]]:
    r"""``doesn`` ``'`` ``t`` -> ``doesn't`` (positions joined); specials never merge."""
    out: List[Tuple[str, List[int]]] = []
    i = 0
    while i < len(units):
        word, group = units[i]
        if (
            i + 2 < len(units)
            and units[i + 1][0] == "'"
            and units[i + 2][0].lower() in _CLITICS
            and word not in special_tokens
            and _WORDLIKE.match(word)
        ):
            out.append((word + "'" + units[i + 2][0], list(group) + list(units[i + 1][1]) + list(units[i + 2][1])))
            i += 3
        else:
            out.append((word, list(group)))
            i += 1
    return out


def _items(
    tokens: Sequence[str], level: str, scheme: str, special_tokens: Collection[str], contractions: bool = False
) -> Dict[str, Tuple[List[int], int]]:
    r"""Item -> (token positions, number of occurrences) for one example."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}.")
    out: Dict[str, Tuple[List[int], int]] = {}
    if level == "token":
        units = [
            (t if t in special_tokens else display_token(t, scheme, special_tokens), [i]) for i, t in enumerate(tokens)
        ]
    else:
        words, _ = merge_subwords(list(tokens), torch.zeros(len(tokens)), scheme, special_tokens)
        units = list(zip(words, word_groups(tokens, scheme, special_tokens)))
        if contractions:
            units = _merge_contractions(units, special_tokens)
    for item, group in units:
        positions, n = out.get(item, ([], 0))
        out[item] = (positions + list(group), n + 1)
    return out


def _class_of(row: Any, has_label: bool) -> str:
    value = row.target_label if has_label else row.target
    return str(value)


def _rows(frame: "pd.DataFrame", score_column: str) -> Iterator[Tuple[int, str, List[str], np.ndarray]]:
    has_label = "target_label" in frame.columns and frame["target_label"].notna().any()
    for position, row in enumerate(frame.itertuples(index=False)):
        tokens = list(row.tokens)
        scores = np.asarray(getattr(row, score_column), dtype=np.float64)
        if scores.shape != (len(tokens),):
            raise ValueError(
                f"row {getattr(row, 'index', position)}: {len(tokens)} tokens but {scores.shape} scores in "
                f"{score_column!r}; every row needs one score per token."
            )
        yield position, _class_of(row, has_label), tokens, scores


def _check_frame(frame: "pd.DataFrame", score_column: str) -> None:
    needed = {"tokens", score_column} | ({"target"} if "target_label" not in frame.columns else set())
    missing = sorted(needed - set(frame.columns))
    if missing:
        raise ValueError(
            f"the table lacks column(s) {missing}; it needs tokens, {score_column} and target_label (or target), "
            f"as attribute_dataset writes them. Columns present: {list(frame.columns)}."
        )


def _add_contrast(records: List[Dict[str, Any]], values: Dict[Tuple[str, str, str], Dict[str, List[float]]]) -> None:
    r"""``contrast_z``: an item's ``mean_z`` in its class minus its background, the mean
    ``z`` of the same item in the examples of the other classes, shrunk towards 0 by
    :data:`BACKGROUND_PRIOR` pseudo-examples; ``lcb_contrast_z`` its lower bound."""
    # (level, item) -> [sum, sum of squares, count] of z over every class
    totals: Dict[Tuple[str, str], np.ndarray] = defaultdict(lambda: np.zeros(3))
    for (_, level, item), slot in values.items():
        z = np.asarray(slot["z"])
        totals[(level, item)] += (z.sum(), (z * z).sum(), z.size)
    for record in records:
        z = np.asarray(values[(record["class"], record["level"], record["item"])]["z"])
        total, total_sq, n_all = totals[(record["level"], record["item"])]
        n, n_other = z.size, n_all - z.size
        other, other_sq = total - z.sum(), total_sq - (z * z).sum()
        background = other / (n_other + BACKGROUND_PRIOR)
        var_other = (
            max(other_sq / n_other - (other / n_other) ** 2, 0.0) * n_other / (n_other - 1) if n_other > 1 else 0.0
        )
        var_mine = z.var(ddof=1) if n > 1 else math.nan
        se = math.sqrt(var_mine / n + var_other * n_other / (n_other + BACKGROUND_PRIOR) ** 2)
        record["contrast_z"] = float(z.mean() - background)
        record["lcb_contrast_z"] = float(record["contrast_z"] - _Z95 * se) if n > 1 else math.nan


def _lcb(mean: np.ndarray, std: np.ndarray, count: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count >= 2, mean - _Z95 * std / np.sqrt(count), np.nan)


@dataclass
class DatasetSummary:
    r"""Per-class statistics of every token and word of an attributed dataset.

    Attributes:
        table (pandas.DataFrame): One row per (``class``, ``level``, ``item``) with
            ``special``, ``count`` (examples containing it), ``occurrences``, ``mean``,
            ``std``, ``lcb``, ``mean_maxabs``, ``lcb_maxabs``, ``mean_z``, ``lcb_z``,
            ``top_share`` (see the module docstring).
        classes (dict of str to int): Examples explained for each class.
        n_rows (int): Rows in the input table; ``n_skipped`` of them had an error.
        statistic (str): What :meth:`top` ranks by by default.
        min_count (int): The fewest examples an item needs to be ranked.
        score_column (str): Which column of scores was summarised.
        frame (pandas.DataFrame): The rows summarised (for example sentences).
        scheme (str): The sub-word scheme; ``special_tokens`` the tokens kept apart.
        unit (str): ``"sum"`` or ``"mean"`` of an item's occurrences in one example.
        contractions (bool): Whether ``doesn ' t`` was one word (pass it to
            :func:`item_positions` to find the summary's items in a row).
    """

    table: "pd.DataFrame"
    classes: Dict[str, int]
    n_rows: int
    n_skipped: int
    statistic: str
    min_count: int
    score_column: str
    frame: "pd.DataFrame" = field(repr=False)
    scheme: str = "wordpiece"
    special_tokens: Tuple[str, ...] = ()
    unit: str = "sum"
    contractions: bool = False

    def top(
        self,
        cls: Optional[str] = None,
        n: Optional[int] = 20,
        *,
        level: str = "word",
        statistic: Optional[str] = None,
        min_count: Optional[int] = None,
        special: bool = False,
    ) -> "pd.DataFrame":
        r"""The top items of one class (or every class), best first.

        Args:
            cls (str, optional): A class as in :attr:`classes`; None gives every class,
                each ranked on its own. Default: None
            n (int, optional): Items per class; None keeps all. Default: 20
            level (str, optional): ``"word"`` or ``"token"``. Default: ``"word"``
            statistic (str, optional): One of :data:`STATISTICS`. Default: :attr:`statistic`
            min_count (int, optional): Fewest examples to be ranked. Default: :attr:`min_count`
            special (bool, optional): Rank the special tokens instead of the others. Default: False

        Returns:
            pandas.DataFrame: the table's rows with a 1-based ``rank`` column.
        """
        statistic = statistic or self.statistic
        if statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}.")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}.")
        if cls is not None and cls not in self.classes:
            raise ValueError(f"class {cls!r} is not in this summary; its classes are {sorted(self.classes)}.")
        min_count = self.min_count if min_count is None else min_count
        t = self.table
        t = t[(t["level"] == level) & (t["special"] == special) & (t["count"] >= min_count)]
        t = t[t[statistic].notna()]
        parts = []
        for name in [cls] if cls is not None else sorted(self.classes):
            part = t[t["class"] == name].sort_values([statistic, "count"], ascending=[False, False], kind="mergesort")
            part = part.head(n) if n is not None else part
            parts.append(part.assign(rank=np.arange(1, len(part) + 1)))
        import pandas as pd

        return pd.concat(parts, ignore_index=True) if parts else t.head(0).assign(rank=[])

    def rank_of(self, item: str, cls: str, *, level: str = "word", statistic: Optional[str] = None) -> Optional[int]:
        r"""The 1-based rank of ``item`` in class ``cls`` (None when it is not ranked)."""
        ranked = self.top(cls, None, level=level, statistic=statistic)
        hit = ranked[ranked["item"] == item]
        return int(hit["rank"].iloc[0]) if len(hit) else None

    def to_csv(self, path: str) -> None:
        r"""Write the whole :attr:`table` as CSV, atomically."""
        from captum_normxlogit._utils.atomic import atomic_write_text

        atomic_write_text(Path(path), self.table.to_csv(index=False, float_format="%.6g"))


def summarize(
    frame: "pd.DataFrame",
    *,
    score_column: str = "scores",
    special_tokens: Optional[Collection[str]] = None,
    scheme: str = "auto",
    statistic: str = DEFAULT_STATISTIC,
    min_count: int = DEFAULT_MIN_COUNT,
    unit: str = DEFAULT_UNIT,
    contractions: bool = DEFAULT_CONTRACTIONS,
    progress: bool = False,
) -> DatasetSummary:
    r"""Per-class statistics of every token and merged word of an attributed dataset.

    Args:
        frame (pandas.DataFrame): Rows as :func:`attribute_dataset` writes them: ``tokens``,
            ``scores`` (or ``score_column``), ``target_label`` or ``target``, optional ``error``.
        score_column (str, optional): The column of per-token scores to summarise, e.g. one
            holding contrastive scores. Default: ``"scores"``
        special_tokens (collection of str, optional): Kept apart; None guesses them from
            their look (:func:`guess_special_tokens`). Default: None
        scheme (str, optional): Sub-word scheme for merging words; ``"auto"`` detects it
            from all tokens of the table. Default: ``"auto"``
        statistic (str, optional): Default ranking of :meth:`DatasetSummary.top`.
            Default: :data:`DEFAULT_STATISTIC`
        min_count (int, optional): Fewest examples containing an item for it to be
            ranked. Default: :data:`DEFAULT_MIN_COUNT`
        unit (str, optional): An item's score in one example: the ``"sum"`` or the
            ``"mean"`` of its occurrences' scores. Default: :data:`DEFAULT_UNIT`
        contractions (bool, optional): Merge ``doesn ' t`` into the word ``doesn't``
            (word level). Default: :data:`DEFAULT_CONTRACTIONS`
        progress (bool, optional): A tqdm bar on stderr over the rows (shown after half a
            second, so small tables show none). Default: False

    Returns:
        DatasetSummary
    """
    import pandas as pd

    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}.")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be a positive int, got {min_count!r}.")
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}.")
    _check_frame(frame, score_column)
    n_rows = len(frame)
    if "error" in frame.columns:
        bad = frame["error"].notna() & (frame["error"].astype(str) != "")
        frame = frame[~bad]
    n_skipped = n_rows - len(frame)
    if len(frame) == 0:
        raise ValueError(
            f"no rows to summarise: the table has {n_rows} row(s), {n_skipped} of them skipped with errors."
        )
    frame = frame.reset_index(drop=True)
    all_tokens = [t for tokens in frame["tokens"] for t in tokens]
    special = tuple(special_tokens) if special_tokens is not None else tuple(guess_special_tokens(all_tokens))
    scheme = detect_scheme(all_tokens) if scheme == "auto" else scheme
    special_set = set(special)

    # (class, level, item) -> per-example values
    values: Dict[Tuple[str, str, str], Dict[str, List[float]]] = defaultdict(lambda: defaultdict(list))
    classes: Dict[str, int] = defaultdict(int)
    from tqdm.auto import tqdm

    rows = tqdm(
        _rows(frame, score_column),
        total=len(frame),
        desc="summarize",
        unit="ex",
        disable=not progress,
        delay=0.5,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    for _, cls, tokens, scores in rows:
        classes[cls] += 1
        for level in LEVELS:
            found = _items(tokens, level, scheme, special_set, contractions)
            items = list(found)
            raw = np.array([scores[found[k][0]].sum() / (found[k][1] if unit == "mean" else 1) for k in items])
            is_special = np.array([k in special_set for k in items])
            regular = raw[~is_special]
            top_value = regular.max() if regular.size else np.nan
            maxabs = np.abs(regular).max() if regular.size else 0.0
            centre = regular.mean() if regular.size else 0.0
            spread = regular.std() if regular.size else 0.0
            for k, value, sp in zip(items, raw, is_special):
                slot = values[(cls, level, k)]
                slot["raw"].append(value)
                slot["occ"].append(found[k][1])
                slot["maxabs"].append(value / maxabs if maxabs > 0 else 0.0)
                slot["z"].append((value - centre) / spread if spread > 0 else 0.0)
                slot["top"].append(float(not sp and value == top_value))
    records = []
    for (cls, level, item), slot in values.items():
        raw, nmax, z = (np.asarray(slot[k]) for k in ("raw", "maxabs", "z"))
        n = raw.size
        record: Dict[str, Any] = {
            "class": cls,
            "level": level,
            "item": item,
            "special": item in special_set,
            "count": n,
            "occurrences": int(sum(slot["occ"])),
        }
        for name, data in (("", raw), ("_maxabs", nmax), ("_z", z)):
            mean, std = data.mean(), (data.std(ddof=1) if n > 1 else math.nan)
            record["mean" + name] = mean
            if name == "":
                record["std"] = std
            record["lcb" + name] = float(_lcb(np.array(mean), np.array(std), np.array(n)))
        record["top_share"] = float(np.mean(slot["top"]))
        records.append(record)
    _add_contrast(records, values)
    table = pd.DataFrame.from_records(records).sort_values(["class", "level", "item"], ignore_index=True)
    return DatasetSummary(
        table=table,
        classes=dict(classes),
        n_rows=n_rows,
        n_skipped=n_skipped,
        statistic=statistic,
        min_count=min_count,
        score_column=score_column,
        frame=frame,
        scheme=scheme,
        special_tokens=special,
        unit=unit,
        contractions=contractions,
    )
