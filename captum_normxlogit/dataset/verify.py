r"""A verified summary: the top candidates of each class checked by occlusion on the model.

:func:`verify_summary` takes the top ``top_k`` items of each class of a
:class:`~captum_normxlogit.dataset.summary.DatasetSummary` (the candidates, ranked by its
NormXLogit statistic) and measures each one's **occlusion effect**: over the examples
explained for that class that contain it, the mean of ``P(class | x) - P(class | x with
every occurrence of the item replaced)``, the replacement being
:func:`~captum_normxlogit.dataset.ablation.occlude` with the tokenizer's mask token (its pad
token without one), exactly as :mod:`~captum_normxlogit.dataset.ablation` does.

* **Which examples.** Every example of the class containing the item, or, above
  ``max_examples``, a sample of that many drawn with a seed of its own per (class, item), so a
  word's sample does not change with ``top_k``. ``n`` says how many were measured and
  ``n_containing`` how many contain it.
* **Interval.** A two-sided 95 % bootstrap-t interval over the measured examples
  (:func:`effect_interval`, 999 resamples, seeded per item; NaN for ``n < 2``). It says how sure
  the mean is, sampling included. Drops are skewed (most near 0, a few large); on synthetic drops
  of that shape with a known mean (a fifth of the examples at 0.3, the rest at 0.01;
  ``tests/dataset/test_verify.py``) it covered the mean in 98 % (n = 30) and 95.5 % (n = 100) of
  1,000 draws, where the plain t interval gave 93 % and 94 %. With few examples and a rare large
  drop no interval over examples is sure: with n = 10 both covered 85-88 %, and with large drops in
  one example of 20, 69 % (n = 10) and 77 % (n = 30): a small ``n`` is a weak check.
* **Order.** :meth:`VerifiedSummary.top` ranks the verified candidates by the interval's lower
  bound (``effect_low``), largest first; a word whose interval includes 0 or lies below it keeps
  its place and is marked (``verdict`` ``"≈0"`` or ``"against"``), never hidden.
  ``order="statistic"`` keeps the NormXLogit order.
* **Cost.** One forward pass (no hooks, no gradient) per measured (example, item) plus one clean
  pass per example involved (none when ``rows_weights`` says the rows were written by this very
  model: their stored ``prob`` is P(class) already, for rows without a ``text_pair``), cut into
  length-aware batches by the attribution pass's own rule
  (:func:`~captum_normxlogit.dataset._batching.token_budget_batches`), window by window over the
  summary's rows: the ``input_ids`` stored in the Parquet rows, no second read of the data.
* **Ranks.** Under ``torchrun`` each rank measures the windows ``w`` with ``w % N == rank`` on its
  own device and the drops are gathered, so every rank returns the same summary as one process.
* **Resume.** With ``cache_dir`` (the attribution folder, as the ``summarize`` command and
  :meth:`DatasetAttribution.summary` pass it) the effects are stored in
  ``cache_dir/.verify-<key>.json``; a rerun with the same rows, model, candidates and settings reads
  them back instead of measuring again.

:data:`DEFAULT_TOP_K` is the summary's :data:`DEFAULT_CANDIDATES` (20), the smallest K whose top K
held 8 of the 10 largest occlusion effects on the candidate-ranking study's choose half (its
check half: 7 of 10 at 20, 8.5 at 40; README). :data:`DEFAULT_MAX_EXAMPLES` (100) bounds the cost
of frequent words.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from torch import nn

from captum_normxlogit._utils.atomic import atomic_write_text
from captum_normxlogit._utils.capture import eval_mode
from captum_normxlogit.dataset._batching import CPU_BATCH_OVERHEAD_TOKENS, token_budget_batches
from captum_normxlogit.dataset._distributed import move_to, rank_context
from captum_normxlogit.dataset._interval import N_BOOT, effect_interval, t_quantile
from captum_normxlogit.dataset._manifest import weights_digest
from captum_normxlogit.dataset.ablation import class_probabilities, occlude
from captum_normxlogit.dataset.summary import DEFAULT_CANDIDATES, LEVELS, STATISTICS, DatasetSummary, item_positions

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "DEFAULT_MAX_EXAMPLES",
    "DEFAULT_TOP_K",
    "EFFECT_COLUMNS",
    "N_BOOT",
    "ORDERS",
    "VERDICTS",
    "VerifiedSummary",
    "effect_interval",
    "t_quantile",
    "verify_summary",
    "weights_fingerprint",
]

DEFAULT_TOP_K = DEFAULT_CANDIDATES  # measured by the candidate-ranking study (studies/ranking.py)
DEFAULT_MAX_EXAMPLES = 100
ORDERS = ("effect", "statistic")
EFFECT_COLUMNS = (
    "effect",
    "effect_low",
    "effect_high",
    "n",
    "n_containing",
    "p_before",
    "effect_includes_0",
    "verdict",
)
VERDICTS = ("towards", "≈0", "against")
_CACHE_VERSION = 2


@dataclass
class VerifiedSummary(DatasetSummary):
    r"""A :class:`DatasetSummary` whose top candidates carry their measured occlusion effect.

    Attributes (beyond :class:`DatasetSummary`'s):
        effects (pandas.DataFrame): One row per verified (``class``, ``level``, ``item``) with
            ``candidate_rank`` (its rank by the statistic), ``n`` (examples measured),
            ``n_containing``, ``effect`` (mean drop of P(class)), ``effect_low`` /
            ``effect_high`` (the 95 % interval), ``p_before``, ``effect_includes_0`` and
            ``verdict``: ``"towards"`` (the interval is above 0: the word pushes towards the
            class), ``"≈0"`` (it includes 0) or ``"against"`` (below 0).
        top_k (int): Candidates verified per class.
        max_examples (int or None): Most examples measured per item.
        seed (int): Seeds each item's sample.
        level (str): The level of the verified items.
        verify_seconds (float): Wall time of the measurement (0 when read from the cache).
        cached (bool): Whether the effects were read from the cache.
    """

    effects: Any = field(default=None, repr=False)
    top_k: int = DEFAULT_TOP_K
    max_examples: Optional[int] = DEFAULT_MAX_EXAMPLES
    seed: int = 0
    level: str = "word"
    verify_seconds: float = math.nan
    cached: bool = False

    def top(
        self,
        cls: Optional[str] = None,
        n: Optional[int] = 20,
        *,
        level: Optional[str] = None,
        statistic: Optional[str] = None,
        min_count: Optional[int] = None,
        special: bool = False,
        order: str = "effect",
    ) -> "pd.DataFrame":
        r"""The top items of one class (or every class) with their occlusion effect.

        Args:
            cls, n, statistic, min_count, special: As :meth:`DatasetSummary.top`.
            level (str, optional): Default: the verified level.
            order (str, optional): ``"effect"``: the verified candidates only, by ``effect_low``
                (largest first; NaN bounds last), ties by the statistic; ``"statistic"``: every
                ranked item in the statistic's order, the effect where measured. Default: ``"effect"``

        Returns:
            pandas.DataFrame: the rows with ``rank``, ``candidate_rank`` and the columns of
            :data:`EFFECT_COLUMNS` (NaN where not measured).
        """
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}.")
        level = level or self.level
        ranked = super().top(cls, None, level=level, statistic=statistic, min_count=min_count, special=special)
        ranked = ranked.rename(columns={"rank": "candidate_rank"})
        measured = self.effects.drop(columns=["candidate_rank"])
        merged = ranked.merge(measured, on=["class", "level", "item"], how="left")
        parts = []
        for name in dict.fromkeys(merged["class"]):
            part = merged[merged["class"] == name]
            if order == "effect":
                part = part[part["n"].notna()]
                low = part["effect_low"].fillna(-np.inf)
                part = part.assign(_low=low).sort_values(
                    ["_low", "candidate_rank"], ascending=[False, True], kind="mergesort"
                )
                part = part.drop(columns=["_low"])
            part = part.head(n) if n is not None else part
            parts.append(part.assign(rank=np.arange(1, len(part) + 1)))
        import pandas as pd

        if not parts:
            return merged.head(0).assign(rank=[])
        return pd.concat(parts, ignore_index=True)

    def to_csv(self, path: str) -> None:
        r"""Write the whole :attr:`table` as CSV, atomically, the effect columns beside the statistics."""
        measured = self.effects.drop(columns=["candidate_rank"])
        table = self.table.merge(measured, on=["class", "level", "item"], how="left")
        atomic_write_text(Path(path), table.to_csv(index=False, float_format="%.6g"))


def weights_fingerprint(model: nn.Module) -> str:
    r"""The fingerprint of a model's weights that :func:`attribute_dataset`'s manifest records
    (``manifest["model"]["weights_digest"]``): to check a model is the one that wrote a folder.

    Returns:
        str: 64 hex digits (BLAKE2b-256 over every tensor).
    """
    return weights_digest(model)


def _class_ids(frame: "pd.DataFrame") -> Dict[str, int]:
    has_label = "target_label" in frame.columns and frame["target_label"].notna().any()
    names = frame["target_label"] if has_label else frame["target"]
    out: Dict[str, int] = {}
    for name, target in zip(names.astype(str), frame["target"]):
        if target is None or (isinstance(target, float) and math.isnan(target)):
            continue
        if out.setdefault(name, int(target)) != int(target):
            raise ValueError(f"class {name!r} names two targets ({out[name]} and {int(target)}); cannot occlude it.")
    return out


def _hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _data_hash(frame: "pd.DataFrame", classes: Sequence[str]) -> str:
    digest = hashlib.sha256()
    index = frame["index"] if "index" in frame.columns else range(len(frame))
    for i, ids, cls in zip(index, frame["input_ids"], classes):
        digest.update(f"{int(i)}:{cls}:".encode())
        digest.update(np.asarray(ids, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def _check(top_k: Any, max_examples: Any, level: str, statistic: str) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}.")
    if max_examples is not None and (isinstance(max_examples, bool) or not isinstance(max_examples, int)):
        raise ValueError(f"max_examples must be None or a positive int, got {max_examples!r}.")
    if max_examples is not None and max_examples < 1:
        raise ValueError(f"max_examples must be None or a positive int, got {max_examples!r}.")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}.")
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}.")


def _ids(tokenizer: Any, replacement_id: Optional[int], pad_token_id: Optional[int]) -> Tuple[int, int]:
    if tokenizer is not None:
        pad = pad_token_id if pad_token_id is not None else tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id
        mask = getattr(tokenizer, "mask_token_id", None)
        replacement = replacement_id if replacement_id is not None else (mask if mask is not None else pad)
    else:
        pad, replacement = pad_token_id, replacement_id if replacement_id is not None else pad_token_id
    if pad is None or replacement is None:
        raise ValueError(
            "occlusion needs a replacement token and a pad token: pass the model's tokenizer, or "
            "replacement_id= and pad_token_id=."
        )
    return int(replacement), int(pad)


def verify_summary(
    summary: DatasetSummary,
    model: nn.Module,
    tokenizer: Any = None,
    *,
    top_k: int = DEFAULT_TOP_K,
    max_examples: Optional[int] = DEFAULT_MAX_EXAMPLES,
    seed: int = 0,
    level: str = "word",
    statistic: Optional[str] = None,
    replacement_id: Optional[int] = None,
    pad_token_id: Optional[int] = None,
    max_tokens_per_batch: int = 8192,
    window: int = 1024,
    cache_dir: Union[None, str, Path] = None,
    items: Optional[Mapping[str, Sequence[str]]] = None,
    rows_weights: Optional[str] = None,
) -> VerifiedSummary:
    r"""Measure the occlusion effect of each class's top ``top_k`` candidates (see the module docstring).

    Args:
        summary (DatasetSummary): From :func:`~captum_normxlogit.dataset.summarize` on rows with
            ``input_ids`` (as :func:`attribute_dataset` writes them).
        model (nn.Module): The sequence classifier that was explained:
            ``model(input_ids=, attention_mask=).logits`` gives ``(B, C)``; run in eval mode
            without gradients (its mode is restored).
        tokenizer (optional): Gives the replacement (mask, else pad) and pad ids. Default: None
        top_k (int, optional): Candidates per class. Default: :data:`DEFAULT_TOP_K`
        max_examples (int, optional): Most examples measured per item (seeded sample); None: all.
            Default: :data:`DEFAULT_MAX_EXAMPLES`
        seed (int, optional): Seeds the samples. Default: 0
        level (str, optional): ``"word"`` or ``"token"``. Default: ``"word"``
        statistic (str, optional): Ranks the candidates. Default: the summary's
        replacement_id, pad_token_id (int, optional): Override the tokenizer's. Default: None
        max_tokens_per_batch (int, optional): Padded-token budget per batch, as in
            :func:`attribute_dataset`. Default: 8192
        window (int, optional): Rows per batching window (and per rank's share). Default: 1024
        cache_dir (str or Path, optional): Folder for the ``.verify-<key>.json`` cache. Default: None
        items (dict of str to sequence of str, optional): Class to the items to measure, instead
            of each class's top ``top_k`` (e.g. the words a contrast found). Default: None
        rows_weights (str, optional): The weights fingerprint of the model that wrote the rows
            (the manifest's ``model.weights_digest``, as :meth:`DatasetAttribution.summary` and the
            ``summarize`` command pass it). When it equals ``model``'s, each row's stored ``prob``
            is used as the clean P(class) instead of a clean forward pass (rows with a
            ``text_pair`` are still measured: occlusion drops their ``token_type_ids``).
            Default: None (every clean P(class) measured)

    Returns:
        VerifiedSummary
    """
    statistic = statistic or summary.statistic
    _check(top_k, max_examples, level, statistic)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}.")
    frame = summary.frame
    if "input_ids" not in frame.columns or "target" not in frame.columns:
        raise ValueError(
            "the summarised rows have no input_ids or target column; verification occludes the stored token "
            "ids, so summarise the rows attribute_dataset wrote (pandas.read_parquet(folder))."
        )
    replacement, pad = _ids(tokenizer, replacement_id, pad_token_id)
    class_ids = _class_ids(frame)
    has_label = "target_label" in frame.columns and frame["target_label"].notna().any()
    row_class = (frame["target_label"] if has_label else frame["target"]).astype(str).tolist()
    if items is not None:
        unknown = sorted(set(items) - set(summary.classes))
        if unknown:
            raise ValueError(
                f"items names class(es) {unknown} that this summary lacks; its classes: {sorted(summary.classes)}."
            )
        candidates = {cls: list(dict.fromkeys(items[cls])) for cls in sorted(items)}
    else:
        candidates = {
            cls: DatasetSummary.top(summary, cls, top_k, level=level, statistic=statistic)["item"].tolist()
            for cls in sorted(summary.classes)
        }
    ctx = rank_context(model)
    move_to(model, ctx)
    weights = weights_digest(model)
    stored = _stored_probs(frame) if rows_weights is not None and rows_weights == weights else None
    key = _hash(
        {
            "version": _CACHE_VERSION,
            "candidates": candidates,
            "level": level,
            "max_examples": max_examples,
            "seed": seed,
            "replacement": replacement,
            "class_ids": class_ids,
            "data": _data_hash(frame, row_class),
            "model": weights,
            "clean": "stored" if stored is not None else "measured",
        }
    )
    cache = Path(cache_dir) / f".verify-{key}.json" if cache_dir is not None else None
    settings: Dict[str, Any] = {"top_k": top_k, "max_examples": max_examples, "seed": seed, "level": level}
    base: Dict[str, Any] = {f.name: getattr(summary, f.name) for f in fields(DatasetSummary)}
    base["statistic"] = statistic
    if cache is not None and cache.is_file():
        try:
            stored = json.loads(cache.read_text())
            effects = _effects_frame(stored["effects"])
            return VerifiedSummary(**base, effects=effects, verify_seconds=0.0, cached=True, **settings)
        except (OSError, ValueError, KeyError):
            pass  # an unreadable cache is measured again and rewritten
    started = time.perf_counter()
    special = set(summary.special_tokens)
    positions: Dict[int, Dict[str, List[int]]] = {}
    rows_of: Dict[str, List[int]] = {c: [] for c in candidates}
    for r, cls in enumerate(row_class):
        if cls in rows_of:
            rows_of[cls].append(r)
    measured: List[Tuple[str, str, int]] = []  # (class, item, row)
    containing: Dict[Tuple[str, str], int] = {}
    for cls, listed in candidates.items():
        wanted = set(listed)
        hits: Dict[str, List[int]] = {item: [] for item in listed}
        for r in rows_of[cls]:
            if r not in positions:
                positions[r] = item_positions(list(frame.at[r, "tokens"]), level, summary.scheme, special)
            for item in wanted.intersection(positions[r]):
                hits[item].append(r)
        for item in listed:
            found = hits[item]
            containing[(cls, item)] = len(found)
            if max_examples is not None and len(found) > max_examples:
                found = sorted(random.Random(f"{seed}:{cls}:{item}").sample(found, max_examples))
            measured.extend((cls, item, r) for r in found)
    drops = _measure(
        model, frame, measured, positions, class_ids, replacement, pad, max_tokens_per_batch, window, ctx, stored
    )
    records = []
    for cls, listed in candidates.items():
        for rank, item in enumerate(listed, start=1):
            d = [drop for drop, _ in drops.get((cls, item), [])]
            mean, low, high = effect_interval(d, seed=f"{seed}:{cls}:{item}")
            before = [p for _, p in drops.get((cls, item), [])]
            records.append(
                {
                    "class": cls,
                    "level": level,
                    "item": item,
                    "candidate_rank": rank,
                    "n": len(d),
                    "n_containing": containing[(cls, item)],
                    "effect": mean,
                    "effect_low": low,
                    "effect_high": high,
                    "p_before": float(np.mean(before)) if before else math.nan,
                }
            )
    effects = _effects_frame(records)
    seconds = time.perf_counter() - started
    if cache is not None and ctx.is_main:
        atomic_write_text(cache, json.dumps({"settings": settings, "seconds": seconds, "effects": records}))
    ctx.barrier()
    return VerifiedSummary(**base, effects=effects, verify_seconds=seconds, cached=False, **settings)


def _stored_probs(frame: "pd.DataFrame") -> Optional[List[Optional[float]]]:
    r"""Each row's stored P(target), None where absent or where the row has a ``text_pair`` (the
    attribution pass saw its ``token_type_ids``, the occlusion does not); None without a column."""
    if "prob" not in frame.columns:
        return None
    pairs = frame["text_pair"].notna().tolist() if "text_pair" in frame.columns else [False] * len(frame)
    out: List[Optional[float]] = []
    for p, pair in zip(frame["prob"].tolist(), pairs):
        ok = p is not None and not pair and math.isfinite(float(p))
        out.append(float(p) if ok else None)
    return out


def _effects_frame(records: List[Dict[str, Any]]) -> "pd.DataFrame":
    import pandas as pd

    columns = ["class", "level", "item", "candidate_rank", "n", "n_containing", "effect", "effect_low", "effect_high"]
    effects = pd.DataFrame.from_records(records, columns=columns + ["p_before"])
    for name in ("effect", "effect_low", "effect_high", "p_before"):
        effects[name] = effects[name].astype(float)
    # NaN bounds (n < 2) count as "includes 0": nothing shows the effect is not 0
    effects["effect_includes_0"] = ~((effects["effect_low"] > 0) | (effects["effect_high"] < 0))
    effects["verdict"] = np.where(
        effects["effect_low"] > 0, VERDICTS[0], np.where(effects["effect_high"] < 0, VERDICTS[2], VERDICTS[1])
    )
    return effects


def _measure(
    model: nn.Module,
    frame: "pd.DataFrame",
    measured: List[Tuple[str, str, int]],
    positions: Dict[int, Dict[str, List[int]]],
    class_ids: Dict[str, int],
    replacement: int,
    pad: int,
    max_tokens: int,
    window: int,
    ctx: Any,
    stored: Optional[List[Optional[float]]] = None,
) -> Dict[Tuple[str, str], List[Tuple[float, float]]]:
    r"""(class, item) -> [(drop, P before)] per measured row, in row order, over every rank; the clean
    P(class) of row ``r`` is ``stored[r]`` where that is not None, else measured."""
    device = ctx.device if ctx.device is not None else next(model.parameters()).device
    overhead = CPU_BATCH_OVERHEAD_TOKENS if device.type == "cpu" else None
    by_window: Dict[int, List[Tuple[str, str, int]]] = {}
    for job in measured:
        by_window.setdefault(job[2] // window, []).append(job)
    mine: List[Tuple[str, str, int, float, float]] = []
    with eval_mode(model):
        for w in sorted(by_window):
            if w % ctx.world_size != ctx.rank:
                continue
            jobs: List[Tuple[List[int], int]] = []
            clean: Dict[Tuple[int, str], int] = {}
            owners: List[Tuple[str, str, int]] = []
            for cls, item, r in by_window[w]:
                ids = [int(v) for v in frame.at[r, "input_ids"]]
                known = stored[r] if stored is not None else None
                if known is None and (r, cls) not in clean:
                    clean[(r, cls)] = len(jobs)
                    jobs.append((ids, class_ids[cls]))
                    owners.append(("", "", r))
                jobs.append((occlude(ids, positions[r][item], replacement), class_ids[cls]))
                owners.append((cls, item, r))
            batches = token_budget_batches([len(j[0]) for j in jobs], max_tokens, overhead)
            probs = class_probabilities(model, jobs, pad, batches, device)
            for j, (cls, item, r) in enumerate(owners):
                if cls:
                    known = stored[r] if stored is not None else None
                    before = known if known is not None else probs[clean[(r, cls)]]
                    mine.append((cls, item, r, float(before - probs[j]), float(before)))
    everything = _gather(mine, ctx)
    out: Dict[Tuple[str, str], List[Tuple[float, float]]] = {}
    for cls, item, _row, drop, before in sorted(everything, key=lambda t: (t[0], t[1], t[2])):
        out.setdefault((cls, item), []).append((drop, before))
    return out


def _gather(mine: List[Any], ctx: Any) -> List[Any]:
    r"""Every rank's records, on every rank (one process: its own)."""
    if ctx.world_size == 1:
        return mine
    import torch.distributed as dist

    gathered: List[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, mine)
    return [record for part in gathered for record in part]
