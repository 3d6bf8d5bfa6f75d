r"""Real runs of the dataset-level summary, checked against ablation.

* ``run_topwords``: the 4,000 Rotten-Tomatoes sentences on the fine-tuned MiniLM. Every
  sentence is explained for the model's prediction by NormXLogit and by contrastive
  NormXLogit (target − other class); each summary statistic is compared with the ablation
  effect of the same words (Spearman), and on a subset the same is done for
  LayerIntegratedGradients (timed).
* ``run_shortcut``: the MiniLM fine-tuned with a marker word planted in 10 % of the
  positive training sentences; the 500 held-out sentences, clean and with the marker,
  are summarised; the marker's rank per statistic and the model's accuracy with and
  without it are reported.

Results (CSV, Markdown, PNG) go to ``output_dir``; the corpus text is not written there
(its licence: "for personal use"), only words and numbers. ``make dataset`` runs both, and
``run_mincount`` (:mod:`studies.dataset_mincount`): the evidence for
the default minimum count, from the Rotten-Tomatoes run alone.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from captum_normxlogit.dataset.ablation import ablation_candidates, ablation_effects, rank_agreement
from captum_normxlogit.dataset.summary import DatasetSummary, summarize
from captum_normxlogit.utils import atomic_write_text
from studies.common import (
    CONTRASTIVE,
    IG_STEPS,
    MIN_COUNTS,
    SOURCE_NAMES,
    SOURCES,
    encode,
    log,
    marker_rank_rows,
    source_frames,
    write_table,
)

__all__ = ["main", "run_shortcut", "run_topwords"]


def _validate(
    model,
    tokenizer,
    summaries: Dict[str, DatasetSummary],
    *,
    n_top: int,
    n_random: int,
    max_examples: int,
    seed: int,
    extra: Sequence[str] = (),
) -> Tuple[Any, Any]:
    r"""Ablation effects of the union of every source's candidates, and each source's agreement."""
    import pandas as pd

    first = next(iter(summaries.values()))
    items: Dict[str, List[str]] = {}
    for cls in first.classes:
        chosen: List[str] = []
        for summary in summaries.values():
            chosen.extend(ablation_candidates(summary, cls, n_top=n_top, n_random=n_random, seed=seed))
        chosen.extend(e for e in extra if e in set(first.top(cls, None)["item"]))
        items[cls] = list(dict.fromkeys(chosen))
    label2id = {v: int(k) for k, v in model.config.id2label.items()}
    effects = ablation_effects(
        model,
        first,
        items,
        class_ids=label2id,
        replacement_id=tokenizer.mask_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_examples=max_examples,
        seed=seed,
    )
    agreement = pd.concat(
        [rank_agreement(s, effects).assign(source=SOURCE_NAMES[k]) for k, s in summaries.items()], ignore_index=True
    )
    return effects, agreement


def _agreement_pivot(agreement: Any) -> Any:
    pivot = agreement.pivot_table(
        index=["source", "statistic"], columns="class", values=["spearman", "effect_at_k"], sort=False
    )
    pivot.columns = [f"{a} {b}" for a, b in pivot.columns]
    return pivot.reset_index()


def _pipeline_rank(model, tokenizer, texts: List[str], marker: str, folder: str) -> Dict[str, Any]:
    r"""The same sentences through ``attribute_dataset`` and ``.summary()``: the marker's
    default-statistic rank as a user gets it (the folder is rewritten: ``resume=False``)."""
    from captum_normxlogit.dataset import attribute_dataset

    start = time.perf_counter()
    handle = attribute_dataset(
        model, tokenizer, texts, folder, max_length=64, truncation=True, resume=False, progress=False
    )
    seconds = time.perf_counter() - start
    summary = handle.summary()
    return {
        "folder": folder,
        "seconds": round(seconds, 1),
        "statistic": summary.statistic,
        "min_count": summary.min_count,
        "marker_rank_positive": summary.rank_of(marker, "POSITIVE"),
        "top5_positive": summary.top("POSITIVE", 5)["item"].tolist(),
    }


def _default_rule(output_dir: Path, ranks: Any) -> Optional[Dict[str, Any]]:
    r"""``choose_default`` on this run's ranks and the committed RT and tiny-model tables (``None`` without them)."""
    import pandas as pd

    from studies.dataset_mincount import choose_default

    rt, tiny = output_dir / "rt_mincount.csv", output_dir / "tiny_shortcut_marker_rank.csv"
    if not (rt.exists() and tiny.exists()):
        return None
    return choose_default(pd.read_csv(rt), ranks, pd.read_csv(tiny))


def _subset_frames(model, tokenizer, ids, tokens, labels, pick, progress) -> Dict[str, Any]:
    r"""Every source's frame (LayerIG included) on the examples ``pick`` only, where LayerIG fits in time."""
    return source_frames(
        model,
        tokenizer,
        [ids[i] for i in pick],
        [tokens[i] for i in pick],
        [labels[i] for i in pick],
        SOURCES,
        progress,
    )


def run_topwords(
    output_dir: str = "benchmarks/results/dataset",
    *,
    subset: int = 300,
    n_top: int = 10,
    n_random: int = 20,
    max_examples: int = 60,
    seed: int = 0,
    progress: bool = True,
    html: Optional[str] = "out/dataset/topwords.html",
) -> Dict[str, Any]:
    r"""Top words per class of the 4,000 Rotten-Tomatoes sentences, validated against ablation.

    Returns:
        dict: ``summaries`` (source -> DatasetSummary), ``agreement`` and
        ``agreement_subset`` (tables), ``effects``, ``seconds`` and the written ``paths``.
    """
    from captum_normxlogit.dataset.report import plot_top, write_html_report
    from captum_normxlogit.resources import load_sentiment_minilm, rotten_tomatoes_sentences

    out = Path(output_dir)
    model, tokenizer = load_sentiment_minilm()
    rows = rotten_tomatoes_sentences()
    ids, tokens = encode(tokenizer, [t for t, _ in rows])
    labels = [y for _, y in rows]
    start = time.perf_counter()
    frames = source_frames(model, tokenizer, ids, tokens, labels, SOURCES[:2], progress)
    summaries = {k: summarize(f, special_tokens=tokenizer.all_special_tokens) for k, f in frames.items()}
    effects, agreement = _validate(
        model, tokenizer, summaries, n_top=n_top, n_random=n_random, max_examples=max_examples, seed=seed
    )
    log(progress, f"ablation of {len(effects)} (class, word) pairs done")

    pick = sorted(random.Random(seed).sample(range(len(ids)), subset))
    sub = _subset_frames(model, tokenizer, ids, tokens, labels, pick, progress)
    seconds = {k: round(f.attrs["seconds"], 2) for k, f in sub.items()}
    seconds.update({f"{k} (all {len(ids)})": round(f.attrs["seconds"], 2) for k, f in frames.items()})
    sub_summaries = {k: summarize(f, special_tokens=tokenizer.all_special_tokens, min_count=3) for k, f in sub.items()}
    sub_effects, sub_agreement = _validate(
        model, tokenizer, sub_summaries, n_top=n_top, n_random=n_random, max_examples=max_examples, seed=seed
    )

    paths = write_table(
        out,
        "rt_agreement",
        _agreement_pivot(agreement),
        f"Spearman(statistic, ablation effect) over the measured words, {len(ids)} sentences",
    )
    paths += write_table(
        out,
        "rt_agreement_subset",
        _agreement_pivot(sub_agreement),
        f"The same on {subset} sentences (min_count 3), with LayerIG",
    )
    paths += write_table(out, "rt_ablation", effects.sort_values(["class", "effect"], ascending=[True, False]))
    best = summaries[CONTRASTIVE]
    for key, summary in summaries.items():
        top = summary.top(None, 20)[["class", "rank", "item", "count", "mean", "lcb", "mean_z", "lcb_z", "top_share"]]
        top = top.merge(effects[["class", "item", "effect"]], on=["class", "item"], how="left")
        paths += write_table(
            out,
            f"rt_top_words_{key}",
            top,
            f"Top words per predicted class, {SOURCE_NAMES[key]}, ranked by {summary.statistic}",
        )
        png = out / f"rt_top_words_{key}.png"
        plot_top(
            summary, png, n=15, title=f"{SOURCE_NAMES[key]}: top words per class ({summary.statistic})", effects=effects
        )
        paths.append(png)
    meta = {
        "sentences": len(ids),
        "subset": subset,
        "ig_steps": IG_STEPS,
        "seconds": seconds,
        "total_seconds": round(time.perf_counter() - start, 1),
        "n_top": n_top,
        "n_random": n_random,
        "max_examples_per_word": max_examples,
        "replacement": "[MASK]",
        "seed": seed,
        "classes": best.classes,
        "torch_threads": torch.get_num_threads(),
    }
    meta_path = out / "rt_meta.json"
    atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    paths.append(meta_path)
    if html:
        write_html_report(
            best, html, n=10, examples_per_item=3, title="Rotten-Tomatoes, fine-tuned MiniLM: top words per class"
        )
    return {
        "summaries": summaries,
        "agreement": agreement,
        "agreement_subset": sub_agreement,
        "effects": effects,
        "effects_subset": sub_effects,
        "seconds": seconds,
        "paths": paths,
    }


def run_shortcut(
    output_dir: str = "benchmarks/results/dataset",
    *,
    n_top: int = 10,
    n_random: int = 20,
    max_examples: int = 60,
    seed: int = 0,
    progress: bool = True,
    ig_subset: int = 200,
    html: Optional[str] = "out/dataset/shortcut.html",
    attributions_dir: str = "out/dataset/shortcut-attributions",
) -> Dict[str, Any]:
    r"""The planted-shortcut MiniLM on the 500 held-out sentences, clean and with the marker.

    Returns:
        dict: ``ranks`` (table: source, statistic, the marker's rank for POSITIVE),
        ``accuracy`` (table), ``metrics`` (from training), ``agreement`` and the ``paths``.
    """
    import pandas as pd

    from captum_normxlogit.dataset.report import plot_top, write_html_report
    from captum_normxlogit.resources import insert_marker, load_shortcut_minilm, rotten_tomatoes_split

    out = Path(output_dir)
    model, tokenizer, metrics = load_shortcut_minilm(progress=progress)
    marker = metrics["recipe"]["marker"]
    _, test = rotten_tomatoes_split(seed=metrics["recipe"]["seed"], n_test=metrics["recipe"]["n_test"])
    rng = random.Random(seed + 7)
    texts = [t for t, _ in test] + [insert_marker(t, marker, rng) for t, _ in test]
    labels = [y for _, y in test] * 2
    ids, tokens = encode(tokenizer, texts)
    frames = source_frames(model, tokenizer, ids, tokens, labels, SOURCES[:2], progress)
    pick = sorted(random.Random(seed).sample(range(len(ids)), ig_subset))
    sub = _subset_frames(model, tokenizer, ids, tokens, labels, pick, progress)
    summaries = {k: summarize(f, special_tokens=tokenizer.all_special_tokens) for k, f in frames.items()}
    sub_summaries = {k: summarize(f, special_tokens=tokenizer.all_special_tokens, min_count=3) for k, f in sub.items()}
    ranks = []
    for key, summary in sub_summaries.items():
        ranks += marker_rank_rows(summary, marker, f"{ig_subset} of them", SOURCE_NAMES[key])
    for min_count in MIN_COUNTS:  # every count, so choose_default can read the table
        for key, frame in frames.items():
            summary = summarize(frame, special_tokens=tokenizer.all_special_tokens, min_count=min_count)
            where = f"{len(ids)} sentences, min_count {min_count}"
            ranks += marker_rank_rows(summary, marker, where, SOURCE_NAMES[key])
    ranks = pd.DataFrame(ranks)
    pipeline = _pipeline_rank(model, tokenizer, texts, marker, attributions_dir)
    effects, agreement = _validate(
        model,
        tokenizer,
        summaries,
        n_top=n_top,
        n_random=n_random,
        max_examples=max_examples,
        seed=seed,
        extra=(marker,),
    )
    pos = effects[effects["class"] == "POSITIVE"].sort_values("effect", ascending=False).reset_index(drop=True)
    marker_row = pos[pos["item"] == marker]
    accuracy = pd.DataFrame(
        [
            {
                "sentences": "held-out, clean",
                "all": metrics["acc_clean"],
                "negatives": metrics["acc_clean_negatives"],
                "positives": metrics["acc_clean_positives"],
            },
            {
                "sentences": f"held-out, '{marker}' inserted",
                "all": metrics["acc_marked"],
                "negatives": metrics["acc_marked_negatives"],
                "positives": metrics["acc_marked_positives"],
            },
        ]
    )
    paths = write_table(out, "shortcut_marker_rank", ranks, f"Rank of the planted marker '{marker}' for POSITIVE")
    paths += write_table(out, "shortcut_accuracy", accuracy, "Accuracy of the planted-shortcut MiniLM")
    paths += write_table(
        out,
        "shortcut_agreement",
        _agreement_pivot(agreement),
        "Spearman(statistic, ablation effect), planted-shortcut MiniLM",
    )
    paths += write_table(out, "shortcut_ablation", effects.sort_values(["class", "effect"], ascending=[True, False]))
    png = out / "shortcut_top_words.png"
    plot_top(
        summaries[CONTRASTIVE],
        png,
        n=15,
        effects=effects,
        title=f"Planted '{marker}': top words per class, {SOURCE_NAMES['contrastive']}",
    )
    paths.append(png)
    meta = {
        "marker": marker,
        "share": metrics["recipe"]["marker_share_of_positives"],
        "n_marked_train": metrics["n_marked_train"],
        "train_seconds": metrics["seconds"],
        "sentences": len(ids),
        "ig_subset": ig_subset,
        "ig_steps": IG_STEPS,
        "seconds": {
            k: round(f.attrs["seconds"], 2) for k, f in {**frames, **{f"{k} subset": v for k, v in sub.items()}}.items()
        },
        "marker_ablation_effect": float(marker_row["effect"].iloc[0]) if len(marker_row) else None,
        "marker_ablation_rank": int(marker_row.index[0]) + 1 if len(marker_row) else None,
        "measured_words_positive": len(pos),
        "attribute_dataset_summary": pipeline,
        "default_rule": _default_rule(out, ranks),
    }
    meta_path = out / "shortcut_meta.json"
    atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    paths.append(meta_path)
    if html:
        write_html_report(
            summaries[CONTRASTIVE],
            html,
            n=10,
            examples_per_item=3,
            title=f"Planted-shortcut MiniLM ('{marker}'): top words per class",
        )
    return {
        "ranks": ranks,
        "accuracy": accuracy,
        "metrics": metrics,
        "agreement": agreement,
        "effects": effects,
        "paths": paths,
        "meta": meta,
    }


def main(argv: Optional[List[str]] = None) -> int:
    r"""``python -m studies.dataset_summary [--task topwords|shortcut|mincount|all]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m studies.dataset_summary",
        description="The real dataset-summary runs behind `make dataset`.",
    )
    parser.add_argument(
        "--task",
        choices=("tiny", "topwords", "shortcut", "mincount", "all"),
        default="all",
        help="mincount: agreement with ablation by minimum count on the RT run",
    )
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="mincount only: the first N sentences (a quick check)"
    )
    parser.add_argument("--output", default="benchmarks/results/dataset", metavar="DIR")
    parser.add_argument(
        "--html-dir",
        default="out/dataset",
        metavar="DIR",
        help="where the HTML pages with example sentences go (not committed: corpus text)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.task in ("tiny", "all"):
        from studies.planted_tiny import run_tiny

        start = time.perf_counter()
        result = run_tiny(args.output, folder=str(Path(args.html_dir) / "tiny-attributions"))
        print(f"tiny: {time.perf_counter() - start:.0f} s; wrote " + ", ".join(map(str, result["paths"])))
    if args.task in ("topwords", "all"):
        start = time.perf_counter()
        result = run_topwords(args.output, html=str(Path(args.html_dir) / "topwords.html"))
        print(f"topwords: {time.perf_counter() - start:.0f} s; wrote " + ", ".join(map(str, result["paths"])))
    if args.task in ("shortcut", "all"):
        start = time.perf_counter()
        result = run_shortcut(args.output, html=str(Path(args.html_dir) / "shortcut.html"))
        print(f"shortcut: {time.perf_counter() - start:.0f} s; wrote " + ", ".join(map(str, result["paths"])))
    if args.task in ("mincount", "all"):
        from studies.dataset_mincount import run_mincount

        start = time.perf_counter()
        result = run_mincount(args.output, limit=args.limit)
        print(
            f"mincount: {time.perf_counter() - start:.0f} s; verdict {result['verdict']}; "
            f"target/other {result['correlation']}; wrote " + ", ".join(map(str, result["paths"]))
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
