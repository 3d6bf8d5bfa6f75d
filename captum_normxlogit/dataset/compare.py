r"""Contrast between two runs on the same data: which words gained or lost weight.

:func:`compare_summaries` takes two summaries of the **same rows** (e.g. a model before and
after fine-tuning, or a planted-shortcut model against the clean one, each run through
:func:`attribute_dataset` on one dataset) and, per class and word, the change of the ranking
statistic from ``a`` to ``b`` (``delta = b - a``, over the words ranked in both: at least
``min_count`` examples of the class in each run; each run's examples of a class are those it
explained for that class, so they may differ when the two models predict differently).
Same data means the same ``index`` set with the same ``input_ids`` for every index; anything
else is refused.

With ``model_a`` and ``model_b`` each class's ``n`` largest gains and ``n`` largest losses are
verified as :func:`~captum_normxlogit.dataset.verify.verify_summary` verifies a summary: the
occlusion effect with its interval on each model, on that model's examples of the class.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np

from captum_normxlogit.dataset.summary import STATISTICS, DatasetSummary
from captum_normxlogit.dataset.verify import DEFAULT_MAX_EXAMPLES, verify_summary

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from torch import nn

__all__ = ["SummaryContrast", "compare_summaries"]


@dataclass
class SummaryContrast:
    r"""What changed between two summaries of the same rows.

    Attributes:
        table (pandas.DataFrame): One row per (``class``, ``item``) ranked in both runs:
            ``count_a``, ``count_b``, ``stat_a``, ``stat_b``, ``delta`` (``stat_b - stat_a``),
            ``rank_a``, ``rank_b`` and, when verified, ``effect_a`` / ``low_a`` / ``high_a`` /
            ``n_a`` and the same for ``b`` (NaN where not measured).
        statistic (str): The statistic compared.
        level (str): Its items' level.
        n_rows (int): Rows shared by both runs.
        verified (bool): Whether effects were measured.
    """

    table: "pd.DataFrame"
    statistic: str
    level: str
    n_rows: int
    verified: bool = False

    def changed(self, cls: str, n: int = 10, *, direction: str = "gained") -> "pd.DataFrame":
        r"""The ``n`` words of ``cls`` whose statistic rose most (``"gained"``) or fell most (``"lost"``).

        Returns:
            pandas.DataFrame: rows of :attr:`table`, largest change first.
        """
        if direction not in ("gained", "lost"):
            raise ValueError(f"direction must be 'gained' or 'lost', got {direction!r}.")
        part = self.table[self.table["class"] == cls]
        part = part[part["delta"] > 0] if direction == "gained" else part[part["delta"] < 0]
        return part.sort_values("delta", ascending=direction == "lost", kind="mergesort").head(n)


def _row_hashes(summary: DatasetSummary) -> Dict[int, str]:
    frame = summary.frame
    if "index" not in frame.columns or "input_ids" not in frame.columns:
        raise ValueError(
            "compare_summaries needs the rows' index and input_ids (as attribute_dataset writes them) to check "
            "that both runs saw the same data."
        )
    return {
        int(i): hashlib.sha256(np.asarray(ids, dtype=np.int64).tobytes()).hexdigest()
        for i, ids in zip(frame["index"], frame["input_ids"])
    }


def _check_same_data(a: DatasetSummary, b: DatasetSummary) -> int:
    ha, hb = _row_hashes(a), _row_hashes(b)
    if set(ha) != set(hb):
        only_a, only_b = sorted(set(ha) - set(hb)), sorted(set(hb) - set(ha))
        raise ValueError(
            f"the two runs are not on the same rows: {len(only_a)} index(es) only in a (e.g. {only_a[:3]}), "
            f"{len(only_b)} only in b (e.g. {only_b[:3]}); compare runs of one dataset."
        )
    differ = sorted(i for i in ha if ha[i] != hb[i])
    if differ:
        raise ValueError(
            f"the two runs hold other token ids for {len(differ)} row(s) (e.g. index {differ[:3]}): another "
            "tokenizer or other data; compare runs with the same inputs."
        )
    return len(ha)


def compare_summaries(
    a: DatasetSummary,
    b: DatasetSummary,
    *,
    statistic: Optional[str] = None,
    level: str = "word",
    min_count: Optional[int] = None,
    model_a: Optional["nn.Module"] = None,
    model_b: Optional["nn.Module"] = None,
    tokenizer: Any = None,
    n: int = 10,
    max_examples: Optional[int] = DEFAULT_MAX_EXAMPLES,
    seed: int = 0,
) -> SummaryContrast:
    r"""Words that gained or lost weight from run ``a`` to run ``b`` on the same rows.

    Args:
        a, b (DatasetSummary): Summaries of two runs on the same data.
        statistic (str, optional): Compared statistic. Default: ``a``'s
        level (str, optional): ``"word"`` or ``"token"``. Default: ``"word"``
        min_count (int, optional): Fewest examples of the class in each run. Default: ``a``'s
        model_a, model_b (nn.Module, optional): Give both to verify each class's ``n`` largest
            gains and losses by occlusion on each model. Default: None
        tokenizer (optional): For the occlusion's mask and pad ids (shared by both runs). Default: None
        n (int, optional): Words verified per class and direction. Default: 10
        max_examples (int, optional): Most examples measured per word. Default: :data:`DEFAULT_MAX_EXAMPLES`
        seed (int, optional): Seeds the samples. Default: 0

    Returns:
        SummaryContrast
    """

    statistic = statistic or a.statistic
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}.")
    if (model_a is None) != (model_b is None):
        raise ValueError("pass both model_a and model_b to verify the contrast, or neither.")
    n_rows = _check_same_data(a, b)
    min_count = a.min_count if min_count is None else min_count
    sides = []
    for name, summary in (("a", a), ("b", b)):
        ranked = DatasetSummary.top(summary, None, None, level=level, statistic=statistic, min_count=min_count)
        sides.append(
            ranked[["class", "item", "count", statistic, "rank"]].rename(
                columns={"count": f"count_{name}", statistic: f"stat_{name}", "rank": f"rank_{name}"}
            )
        )
    table = sides[0].merge(sides[1], on=["class", "item"], how="inner")
    table["delta"] = table["stat_b"] - table["stat_a"]
    table = table.sort_values(["class", "delta"], ascending=[True, False], kind="mergesort", ignore_index=True)
    contrast = SummaryContrast(table, statistic, level, n_rows)
    if model_a is None:
        return contrast
    words: Dict[str, List[str]] = {}
    for cls in sorted(set(table["class"])):
        chosen = list(contrast.changed(cls, n, direction="gained")["item"])
        chosen += list(contrast.changed(cls, n, direction="lost")["item"])
        if chosen:
            words[cls] = chosen
    assert model_b is not None  # both or neither, checked above
    for name, summary, model in (("a", a, model_a), ("b", b, model_b)):
        wanted = {cls: items for cls, items in words.items() if cls in summary.classes}
        verified = verify_summary(
            summary, model, tokenizer, items=wanted, level=level, max_examples=max_examples, seed=seed
        )
        effects = verified.effects[["class", "item", "effect", "effect_low", "effect_high", "n"]].rename(
            columns={
                "effect": f"effect_{name}",
                "effect_low": f"low_{name}",
                "effect_high": f"high_{name}",
                "n": f"n_{name}",
            }
        )
        table = table.merge(effects, on=["class", "item"], how="left")
    contrast.table, contrast.verified = table, True
    return contrast
