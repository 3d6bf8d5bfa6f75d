r"""The ground truth a dataset-level ranking is checked against: occlusion of one item.

For a class ``c`` and an item ``w`` (a word or a token, as in
:mod:`captum_normxlogit.dataset.summary`), the **ablation effect** is the mean, over the
examples explained for ``c`` that contain ``w``, of ``P(c | x) - P(c | x without w)``,
where every occurrence of ``w`` is replaced by one replacement token (the tokenizer's mask
token by default, else its pad token), the length and the attention mask unchanged. A
positive effect means the model's probability of ``c`` leans on ``w``.

:func:`rank_agreement` then gives the Spearman rank correlation between each summary
statistic and the ablation effect over the same items, per class.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from captum_normxlogit._utils.capture import eval_mode
from captum_normxlogit._utils.padding import pad_batch
from captum_normxlogit.dataset.summary import STATISTICS, DatasetSummary, item_positions

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "ablation_candidates",
    "ablation_effects",
    "class_probabilities",
    "occlude",
    "rank_agreement",
    "spearman",
]


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    r"""Spearman's rank correlation (average ranks for ties); NaN with fewer than 3 pairs
    or a constant side."""
    import pandas as pd

    a, b = pd.Series(list(x), dtype=float), pd.Series(list(y), dtype=float)
    keep = a.notna() & b.notna()
    a, b = a[keep].rank(), b[keep].rank()
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def ablation_candidates(
    summary: DatasetSummary,
    cls: str,
    *,
    n_top: int = 15,
    n_random: int = 30,
    statistics: Sequence[str] = STATISTICS,
    level: str = "word",
    seed: int = 0,
) -> List[str]:
    r"""The items whose ablation effect is measured for one class: the union of the top
    ``n_top`` of every statistic in ``statistics`` (so no statistic is judged only on
    another's favourites), plus ``n_random`` drawn at random from the other ranked items
    (``count >= summary.min_count``, special tokens excluded).

    Returns:
        list of str: the items, top ones first, then the random ones.
    """
    chosen: List[str] = []
    for statistic in statistics:
        chosen.extend(summary.top(cls, n_top, level=level, statistic=statistic)["item"])
    chosen = list(dict.fromkeys(chosen))
    rest = sorted(set(summary.top(cls, None, level=level, statistic="mean")["item"]) - set(chosen))
    rng = random.Random(seed)
    return chosen + rng.sample(rest, min(n_random, len(rest)))


def occlude(ids: Sequence[int], positions: Sequence[int], replacement_id: int) -> List[int]:
    r"""``ids`` with every position in ``positions`` replaced by ``replacement_id``: the one
    occlusion every check of this package applies (length and attention mask unchanged).

    Returns:
        list of int: a new list, ``len(ids)`` long.
    """
    out = [int(v) for v in ids]
    for p in positions:
        out[p] = replacement_id
    return out


@torch.no_grad()
def class_probabilities(
    model: nn.Module,
    rows: Sequence[Tuple[Sequence[int], int]],
    pad_token_id: int,
    batches: Sequence[Sequence[int]],
    device: torch.device,
) -> np.ndarray:
    r"""P(class) of each ``(input_ids, class)`` row, one forward pass per batch of row positions.

    Args:
        model (nn.Module): ``model(input_ids=, attention_mask=).logits`` gives ``(B, C)``.
        rows (sequence of (list of int, int)): Token ids and the class whose probability is read.
        pad_token_id (int): Pads each batch on the right (attention mask 0 there).
        batches (sequence of sequence of int): Positions into ``rows``, each exactly once.
        device (torch.device): Where the batches go.

    Returns:
        numpy.ndarray: ``(len(rows),)`` float64.
    """
    out = np.empty(len(rows))
    for chunk in batches:
        ids, mask = pad_batch([list(rows[i][0]) for i in chunk], pad_token_id)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        if logits.dim() != 2:
            raise ValueError(
                f"occlusion needs a sequence classifier (logits of shape (B, C)); this model gives "
                f"{tuple(logits.shape)}."
            )
        probs = logits.float().softmax(-1).cpu()
        for b, i in enumerate(chunk):
            out[i] = float(probs[b, rows[i][1]])
    return out


def _probabilities(
    model: nn.Module, rows: List[Tuple[List[int], int]], pad_token_id: int, batch_size: int, device: torch.device
) -> np.ndarray:
    r"""P(class) of each ``(input_ids, class)`` row, batched by similar length."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return class_probabilities(model, rows, pad_token_id, batches, device)


def ablation_effects(
    model: nn.Module,
    summary: DatasetSummary,
    items: Mapping[str, Sequence[str]],
    *,
    class_ids: Dict[str, int],
    replacement_id: int,
    pad_token_id: int,
    level: str = "word",
    max_examples: Optional[int] = 200,
    batch_size: int = 64,
    seed: int = 0,
) -> "pd.DataFrame":
    r"""Measure the ablation effect of each item of each class on a sequence classifier.

    Args:
        model (nn.Module): ``model(input_ids=, attention_mask=).logits`` gives ``(B, C)``;
            run in eval mode (its mode is restored) without gradients.
        summary (DatasetSummary): Its :attr:`~DatasetSummary.frame` supplies the examples
            (``input_ids``, ``tokens``, the class each was explained for).
        items (dict of str to sequence of str): Class to the items to measure, e.g. from
            :func:`ablation_candidates`.
        class_ids (dict of str to int): Class name (as in the summary) to its logit index.
        replacement_id (int): Token id written over every occurrence, e.g.
            ``tokenizer.mask_token_id``.
        pad_token_id (int): Pads batches (attention mask 0 there).
        level (str, optional): ``"word"`` or ``"token"``, as the items. Default: ``"word"``
        max_examples (int, optional): At most this many examples per item, drawn with
            ``seed`` (None: all). Default: 200
        batch_size (int, optional): Examples per forward pass. Default: 64
        seed (int, optional): Default: 0

    Returns:
        pandas.DataFrame: one row per (``class``, ``item``) with ``n_examples``,
        ``effect`` (mean probability drop), ``effect_se`` (its standard error) and
        ``p_before`` (mean probability before).
    """
    import pandas as pd

    frame = summary.frame
    if "input_ids" not in frame.columns:
        raise ValueError("the summarised table has no input_ids column; ablation needs the token ids.")
    unknown = sorted(set(items) - set(class_ids))
    if unknown:
        raise ValueError(f"class_ids lacks {unknown}; give the logit index of every class in items.")
    items = {cls: list(dict.fromkeys(wanted)) for cls, wanted in items.items()}  # an item listed twice counts once
    special = set(summary.special_tokens)
    label_col = "target_label" if "target_label" in frame.columns else "target"
    classes = frame[label_col].astype(str).to_numpy()
    rng = random.Random(seed)
    device = next(model.parameters()).device
    jobs: List[Tuple[List[int], int]] = []
    owners: List[Tuple[str, str, int]] = []  # (class, item, row) per job; the row's clean copy is its own job
    clean_job: Dict[int, int] = {}
    positions_cache: Dict[int, Dict[str, List[int]]] = {}
    for cls, wanted in items.items():
        rows_of_class = np.flatnonzero(classes == cls)
        for item in wanted:
            hits = []
            for r in rows_of_class.tolist():  # python ints: the row keys below are ints
                if r not in positions_cache:
                    positions_cache[r] = item_positions(
                        list(frame.at[r, "tokens"]), level, summary.scheme, special, contractions=summary.contractions
                    )
                if item in positions_cache[r]:
                    hits.append(int(r))
            if max_examples is not None and len(hits) > max_examples:
                hits = sorted(rng.sample(hits, max_examples))
            for r in hits:
                ids = [int(v) for v in frame.at[r, "input_ids"]]
                if r not in clean_job:
                    clean_job[r] = len(jobs)
                    jobs.append((list(ids), class_ids[cls]))
                    owners.append(("", "", r))
                jobs.append((occlude(ids, positions_cache[r][item], replacement_id), class_ids[cls]))
                owners.append((cls, item, r))
    with eval_mode(model):
        probs = _probabilities(model, jobs, pad_token_id, batch_size, device)
    drops: Dict[Tuple[str, str], List[float]] = {}
    before: Dict[Tuple[str, str], List[float]] = {}
    for j, (cls, item, r) in enumerate(owners):
        if cls:
            drops.setdefault((cls, item), []).append(probs[clean_job[r]] - probs[j])
            before.setdefault((cls, item), []).append(probs[clean_job[r]])
    records = []
    for cls, wanted in items.items():
        for item in wanted:
            d = np.asarray(drops.get((cls, item), []))
            records.append(
                {
                    "class": cls,
                    "item": item,
                    "n_examples": int(d.size),
                    "effect": float(d.mean()) if d.size else float("nan"),
                    "effect_se": float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan"),
                    "p_before": float(np.mean(before[(cls, item)])) if d.size else float("nan"),
                }
            )
    columns = ["class", "item", "n_examples", "effect", "effect_se", "p_before"]
    return pd.DataFrame.from_records(records, columns=columns)


def rank_agreement(
    summary: DatasetSummary,
    effects: "pd.DataFrame",
    *,
    statistics: Sequence[str] = STATISTICS,
    level: str = "word",
    top_k: int = 10,
) -> "pd.DataFrame":
    r"""How well each statistic's ranking agrees with the ablation ranking, per class.

    Args:
        summary (DatasetSummary): The statistics.
        effects (pandas.DataFrame): From :func:`ablation_effects`.
        statistics (sequence of str, optional): Which to judge. Default: all
        level (str, optional): The items' level. Default: ``"word"``
        top_k (int, optional): For ``effect_at_k``: the mean ablation effect of the
            statistic's top ``k`` among the measured items. Default: 10

    Returns:
        pandas.DataFrame: one row per (``class``, ``statistic``) with ``spearman``
        (over every measured item), ``n_items``, ``effect_at_k`` and ``best_effect_at_k``
        (the mean of the ``k`` largest measured effects, the ceiling).
    """
    import pandas as pd

    table = summary.table[summary.table["level"] == level]
    records = []
    for cls, measured in effects.groupby("class", sort=True):
        merged = measured.merge(table[table["class"] == cls], on=["class", "item"], how="left")
        ceiling = merged["effect"].nlargest(top_k).mean()
        for statistic in statistics:
            ranked = merged.dropna(subset=[statistic, "effect"]).sort_values(statistic, ascending=False)
            records.append(
                {
                    "class": cls,
                    "statistic": statistic,
                    "n_items": len(ranked),
                    "spearman": spearman(ranked[statistic], ranked["effect"]),
                    "effect_at_k": float(ranked["effect"].head(top_k).mean()),
                    "best_effect_at_k": float(ceiling),
                }
            )
    return pd.DataFrame.from_records(records)
