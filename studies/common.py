r"""What the dataset studies share: their settings, the attribution of sentences per source, and
the writing of their tables. Public names only, so that no study imports a private name of another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from captum_normxlogit import NormXLogit
from captum_normxlogit.dataset.method_frame import method_frame
from captum_normxlogit.dataset.summary import STATISTICS, DatasetSummary
from captum_normxlogit.methods import LAYER_IG, NORMXLOGIT, AttributionMethod, build_method
from captum_normxlogit.utils import atomic_write_text

__all__ = [
    "CONTRASTIVE",
    "IG_STEPS",
    "MIN_COUNTS",
    "SOURCES",
    "SOURCE_NAMES",
    "encode",
    "source_frames",
    "log",
    "marker_rank_rows",
    "method_for",
    "write_table",
]

IG_STEPS = 16
MIN_COUNTS = (3, 5, 10, 20)  # the minimum counts both runs compare
CONTRASTIVE = "contrastive"  # the normxlogit row with contrast="runner_up"; the others are table keys
SOURCES = (NORMXLOGIT.key, CONTRASTIVE, LAYER_IG.key)
SOURCE_NAMES = {
    NORMXLOGIT.key: NORMXLOGIT.name,
    CONTRASTIVE: f"{NORMXLOGIT.name} target−other",
    LAYER_IG.key: f"{LAYER_IG.short_name} ({IG_STEPS} steps, {LAYER_IG.defaults['baselines']} baseline, sum)",
}


def log(progress: bool, message: str) -> None:
    r"""Print ``[dataset] message`` when ``progress`` is on."""
    if progress:
        print(f"[dataset] {message}", flush=True)


def encode(tokenizer: Any, texts: Sequence[str], max_length: int = 64) -> Tuple[List[List[int]], List[List[str]]]:
    r"""Token ids and token strings of ``texts``, truncated to ``max_length`` (default 64).

    Returns:
        ``(ids, tokens)``: one list per text each.
    """
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    ids = [list(map(int, r)) for r in enc["input_ids"]]
    return ids, [tokenizer.convert_ids_to_tokens(r) for r in ids]


def method_for(key: str, nx: NormXLogit, tokenizer: Any) -> AttributionMethod:
    r"""The attribution method of a source key: :data:`CONTRASTIVE` or a method-table key, built
    with the studies' settings (``[CLS]``/``[SEP]`` kept, ``reduction="sum"``, :data:`IG_STEPS`)."""
    if key == CONTRASTIVE:
        return build_method(NORMXLOGIT.key, nx, contrast="runner_up")
    specials = (tokenizer.cls_token_id, tokenizer.sep_token_id)
    return build_method(
        key, nx, pad_token_id=tokenizer.pad_token_id, special_token_ids=specials, reduction="sum", ig_steps=IG_STEPS
    )


def source_frames(model, tokenizer, ids, tokens, labels, keys, progress) -> Dict[str, Any]:
    r"""One :func:`~captum_normxlogit.dataset.method_frame.method_frame` per source key in ``keys``,
    every sentence explained for the model's prediction (computed once for all keys).

    Returns:
        dict: source key -> attribution frame (``frame.attrs["seconds"]``: its wall time).
    """
    from captum_normxlogit.dataset.method_frame import predict

    nx = NormXLogit(model)
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    probs = predict(model, ids, tokenizer.pad_token_id)
    frames = {}
    for key in keys:
        frame = method_frame(
            method_for(key, nx, tokenizer),
            model,
            ids,
            tokens,
            pad_token_id=tokenizer.pad_token_id,
            id2label=id2label,
            labels=labels,
            batch_size=32,
            progress=progress,
            probs=probs,
        )
        log(progress, f"{key}: {len(ids)} sentences attributed in {frame.attrs['seconds']:.1f} s")
        frames[key] = frame
    return frames


def write_table(output_dir: Path, name: str, table: Any, title: str = "") -> List[Path]:
    r"""Write ``table`` as ``<name>.csv`` (6 significant digits) and ``<name>.md`` (under ``## title``)
    into ``output_dir``, each atomically.

    Returns:
        list of pathlib.Path: The two files.
    """
    from captum_normxlogit.dataset.report import markdown_table

    csv_path, md_path = output_dir / f"{name}.csv", output_dir / f"{name}.md"
    atomic_write_text(csv_path, table.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(md_path, (f"## {title}\n\n" if title else "") + markdown_table(table) + "\n")
    return [csv_path, md_path]


def marker_rank_rows(summary: DatasetSummary, marker: str, sentences: str, source: str) -> List[Dict[str, Any]]:
    r"""One ``*_marker_rank`` table row per statistic: the marker's rank for POSITIVE in ``summary``."""
    n_words = len(summary.top("POSITIVE", None))
    return [
        {
            "sentences": sentences,
            "source": source,
            "statistic": statistic,
            "marker rank (POSITIVE)": summary.rank_of(marker, "POSITIVE", statistic=statistic),
            "ranked words": n_words,
        }
        for statistic in STATISTICS
    ]
