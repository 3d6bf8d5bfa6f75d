r"""Which one-pass statistic finds the words occlusion says matter (issue 17, item 2).

``python -m studies.ranking [--task grid|check|layerig|top|all]`` on the fine-tuned MiniLM and
the 4,000 Rotten-Tomatoes sentences (explained for the prediction), split at random (seed 0)
into a **choose** half, on which the defaults are picked by the rule in :func:`choose`, and a
**check** half, on which they are only reported, with the planted-shortcut MiniLM (marker rank
and recall on its 1,000 held-out sentences, clean and marked). Compared: every layer of the
same pass (``layers="all"``) and their sum, every statistic of :data:`STATISTICS` (among them
``contrast_z``, a word against its own background in the other class), the unit of a word in
one example (``sum`` or ``mean`` of its repeats) and contraction merging. The truth is the
occlusion effect of every word with ``count >= 10`` in a class (:mod:`studies.ranking_data`).
Tables go to ``benchmarks/results/dataset/ranking_*``; only words and numbers are written.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from captum_normxlogit.dataset.summary import STATISTICS, summarize
from studies.ranking_data import (
    LAYER_COLUMNS,
    OCCLUSION_CAP,
    attribution_frame,
    occlusion_path,
    occlusion_table,
    split_rows,
    study_cache,
)
from studies.ranking_metrics import KS, ranking_metrics

__all__ = ["choose", "run_grid", "main"]

MIN_COUNT = 10
OUT = "benchmarks/results/dataset"


def _log(message: str) -> None:
    print(f"[ranking] {time.strftime('%H:%M:%S')} {message}", flush=True)


def _write(out: Path, name: str, table: Any, title: str) -> None:
    from captum_normxlogit.dataset.report import markdown_table

    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.csv").write_text(table.to_csv(index=False, float_format="%.4g"))
    (out / f"{name}.md").write_text(f"## {title}\n\n" + markdown_table(table) + "\n")


def rt_frame(cache: Path) -> Dict[str, Any]:
    from captum_normxlogit.resources import load_sentiment_minilm, rotten_tomatoes_sentences

    model, tokenizer = load_sentiment_minilm(progress=False)
    texts = [t for t, _ in rotten_tomatoes_sentences()]
    frame, seconds = attribution_frame(model, tokenizer, texts, cache / "rt-layers")
    n_layers = sum(c.startswith("layer") and c[5:].isdigit() for c in frame.columns)
    return {"model": model, "tokenizer": tokenizer, "frame": frame, "seconds": seconds, "n_layers": n_layers}


def shortcut_frame(cache: Path) -> Dict[str, Any]:
    from captum_normxlogit.resources import insert_marker, load_shortcut_minilm, rotten_tomatoes_split

    model, tokenizer, metrics = load_shortcut_minilm(progress=False)
    marker = metrics["recipe"]["marker"]
    _, test = rotten_tomatoes_split(seed=metrics["recipe"]["seed"], n_test=metrics["recipe"]["n_test"])
    rng = random.Random(7)  # run_shortcut's sentences (seed 0 + 7)
    texts = [t for t, _ in test] + [insert_marker(t, marker, rng) for t, _ in test]
    frame, seconds = attribution_frame(model, tokenizer, texts, cache / "shortcut-layers")
    return {"model": model, "tokenizer": tokenizer, "frame": frame, "seconds": seconds, "marker": marker}


def configs(n_layers: int) -> List[Dict[str, Any]]:
    r"""Every (score column, unit, contractions) compared: the last layer (``scores``) in all
    four units; each earlier layer and the sum over layers in the old unit (sum, no merging) and
    in the other corner (mean, merged). (A summary of 2,000 rows takes ~13 s here.)"""
    out = [{"column": "scores", "unit": u, "contractions": c} for u in ("sum", "mean") for c in (False, True)]
    for column in [LAYER_COLUMNS.format(k) for k in range(n_layers - 1)] + ["layers_sum"]:
        out += [
            {"column": column, "unit": "sum", "contractions": False},
            {"column": column, "unit": "mean", "contractions": True},
        ]
    return out


def grid(
    run: Dict[str, Any], rows: List[int], name: str, cache: Path, only: Optional[List[Dict[str, Any]]] = None
) -> Any:
    r"""Metrics of every config and statistic on ``rows`` of ``run["frame"]`` (one row per class)."""
    import pandas as pd

    frame = run["frame"].iloc[rows].reset_index(drop=True)
    specials = run["tokenizer"].all_special_tokens
    truth: Dict[bool, Any] = {}
    wanted = only or configs(run["n_layers"])
    for contractions in sorted({c["contractions"] for c in wanted}):
        base = summarize(frame, special_tokens=specials, contractions=contractions)
        _log(f"{name}: occlusion, contractions={contractions}")
        truth[contractions] = occlusion_table(
            run["model"], run["tokenizer"], base, cache, name, min_count=MIN_COUNT, reuse=truth.get(False)
        )
    global _JOB
    _JOB = {"frame": frame, "specials": specials, "truth": truth, "name": name}
    # one process per config (fork shares the frame): the summaries are the slow part here
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=multiprocessing.get_context("fork")) as pool:
        records = [r for part in pool.map(_grid_config, wanted) for r in part]
    _log(f"{name}: grid done")
    return pd.DataFrame.from_records(records), truth


_JOB: Dict[str, Any] = {}
WORKERS = 4


def _grid_config(config: Dict[str, Any]) -> List[Dict[str, Any]]:
    torch.set_num_threads(1)
    job = _JOB
    summary = summarize(
        job["frame"],
        score_column=config["column"],
        special_tokens=job["specials"],
        unit=config["unit"],
        contractions=config["contractions"],
    )
    out = []
    for statistic in STATISTICS:
        for row in ranking_metrics(summary, job["truth"][config["contractions"]], statistic, min_count=MIN_COUNT):
            out.append({"set": job["name"], **config, "statistic": statistic, **row})
    return out


def choose(table: Any) -> Dict[str, Any]:
    r"""The rule, fixed before any check-set number was seen: on the choose set, among the
    configs on the last layer's ``scores`` (all a default pass stores; ``layers="all"`` stores 7
    times as much, so the other layers are reported, not chosen), the (unit, contractions,
    statistic) with the best class-mean recall@20 (rounded to 0.05); ties by class-mean
    Spearman. The default K: the smallest K in :data:`KS` whose recall is >= 0.8 in every
    class (the largest K if none)."""
    keys = ["column", "unit", "contractions", "statistic"]
    table = table[table["column"] == "scores"]
    mean = table.groupby(keys, sort=False)[["recall@20", "spearman"]].mean().reset_index()
    mean["score"] = (mean["recall@20"] * 20).round() / 20
    best = mean.sort_values(["score", "spearman"], ascending=False, kind="mergesort").iloc[0]
    pick = {k: best[k] for k in keys}
    mine = table[(table[keys] == best[keys]).all(axis=1)]
    k = next((k for k in KS if (mine[f"recall@{k}"] >= 0.8).all()), KS[-1])
    return {**{k2: (bool(v) if k2 == "contractions" else str(v)) for k2, v in pick.items()}, "k": int(k)}


def _marker_ranks(frame: Any, specials: Any, marker: str, pick: Dict[str, Any], extra: str) -> List[Dict[str, Any]]:
    rows = []
    units = {("chosen unit", pick["unit"], pick["contractions"]), ("old unit", "sum", False)}
    for label, unit, contractions in sorted(units):
        summary = summarize(frame, special_tokens=specials, unit=unit, contractions=contractions)
        for statistic in dict.fromkeys([pick["statistic"], "mean_z", "contrast_z", "lcb_contrast_z"]):
            rows.append(
                {
                    "model": extra,
                    "statistic": statistic,
                    "unit": f"{label}: {unit}, contractions {contractions}",
                    "marker rank (POSITIVE)": summary.rank_of(marker, "POSITIVE", statistic=statistic),
                    "ranked words": len(summary.top("POSITIVE", None)),
                }
            )
    return rows


def tiny_ranks(pick: Dict[str, Any], cache: Path) -> List[Dict[str, Any]]:
    r"""The tiny planted BERT (trained in seconds on one thread), the marker's rank."""
    from captum_normxlogit.dataset import attribute_dataset
    from studies.planted_tiny import MARKER, NAMES, tokenizer, train_planted

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        planted = train_planted()
    finally:
        torch.set_num_threads(threads)
    texts = [" ".join(tokens[1:-1]) for tokens in planted.tokens]
    handle = attribute_dataset(planted.model, tokenizer(), texts, cache / "tiny", resume=False, progress=False)
    frame = handle.to_pandas()
    return _marker_ranks(frame, ["[PAD]", "[CLS]", "[SEP]", "[MASK]"], NAMES[MARKER], pick, "tiny BERT")


def _pivot(table: Any, keys: List[str]) -> Any:
    cols = [f"recall@{k}" for k in KS] + ["spearman", "noise@10", "precision@10"]
    wide = table.pivot_table(index=keys, columns="class", values=cols, sort=False)
    wide.columns = [f"{a} {b[:3]}" for a, b in wide.columns]
    return wide.reset_index()


def run_grid(out: Path, cache: Path) -> Dict[str, Any]:
    r"""The choose half: every config; the chosen one (``ranking_choice.json``)."""
    run = rt_frame(cache)
    choose_rows, _ = split_rows(len(run["frame"]))
    table, _ = grid(run, choose_rows, "rt-choose", cache)
    pick = choose(table)
    table.to_csv(out / "ranking_choose_grid_classes.csv", index=False, float_format="%.4g")
    summary = table.groupby(["column", "unit", "contractions", "statistic"], sort=False)[
        ["recall@10", "recall@20", "recall@30", "spearman", "noise@10"]
    ].mean()
    summary = summary.reset_index().sort_values(["recall@20", "spearman"], ascending=False)
    _write(
        out,
        "ranking_choose_grid",
        summary,
        "Choose half (2,000 RT sentences): class-mean metrics of every config, best first",
    )
    (out / "ranking_choice.json").write_text(
        json.dumps({**pick, "rule": " ".join((choose.__doc__ or "").split("\n\n")[0].split())}, indent=2) + "\n"
    )
    _log(f"choice {pick}")
    return {"pick": pick, "table": table, "run": run}


def run_check(out: Path, cache: Path, pick: Dict[str, Any], *, shortcut_recall: bool = False) -> None:
    r"""The check half and the planted MiniLM: the chosen config against the old default."""
    import pandas as pd

    old = {"column": "scores", "unit": "sum", "contractions": False, "statistic": "mean_z"}
    rows = []
    run = rt_frame(cache)
    _, check_rows = split_rows(len(run["frame"]))
    short = shortcut_frame(cache)
    short["n_layers"] = run["n_layers"]
    sets = [("rt-check", run, check_rows)]
    if shortcut_recall:  # its occlusion table costs another ~10 CPU-minutes here
        sets.append(("shortcut", short, list(range(len(short["frame"])))))
    # the last layer, summed and mean, without merging: the chosen and the old unit (merging lost on the choose half)
    last = [c for c in configs(run["n_layers"])[:4] if not c["contractions"]]
    for name, r, idx in sets:
        table, _ = grid(r, idx, name, cache, only=last)
        for label, cfg in (("chosen", pick), ("old default", old)):
            sel = table[
                (table[["column", "unit", "contractions", "statistic"]] == pd.Series({k: cfg[k] for k in old})).all(
                    axis=1
                )
            ]
            rows.append(sel.assign(which=label))
        means = table.groupby(["column", "unit", "contractions", "statistic"], sort=False)[
            ["recall@10", "recall@20", "recall@30", "spearman", "noise@10"]
        ].mean()
        _write(out, f"ranking_{name}_grid", means.reset_index(), f"{name}: class-mean metrics, last layer, every unit")
    checks = _pivot(pd.concat(rows), ["set", "which", "column", "unit", "contractions", "statistic"])
    _write(out, "ranking_check", checks, "Check sets (not used to choose): RT check half and planted-shortcut MiniLM")
    specials = short["tokenizer"].all_special_tokens
    ranks = _marker_ranks(short["frame"], specials, short["marker"], pick, "planted MiniLM") + tiny_ranks(pick, cache)
    _write(out, "ranking_marker_rank", pd.DataFrame(ranks), "Rank of the planted marker for POSITIVE")


def run_layerig(out: Path, cache: Path, pick: Dict[str, Any], n_rows: int = 200, steps: int = 16) -> Dict[str, Any]:
    r"""LayerIG and NormXLogit on the same ``n_rows`` of the check half: recall, Spearman and
    precision@10 against occlusion of every word in >= 3 of those rows, and each method's time."""
    import pandas as pd

    from captum_normxlogit import NormXLogit
    from captum_normxlogit.dataset.method_frame import method_frame, predict
    from captum_normxlogit.methods import LAYER_IG, NORMXLOGIT, build_method
    from studies.ranking_metrics import verified_top

    run = rt_frame(cache)
    model, tok = run["model"], run["tokenizer"]
    _, check_rows = split_rows(len(run["frame"]))
    rows = sorted(random.Random(1).sample(check_rows, n_rows))
    nx_frame = run["frame"].iloc[rows].reset_index(drop=True)
    ids = [list(map(int, r)) for r in nx_frame["input_ids"]]
    tokens = [list(t) for t in nx_frame["tokens"]]
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    probs = predict(model, ids, tok.pad_token_id)
    nx = NormXLogit(model)
    seconds, frames = {}, {}
    for spec in (NORMXLOGIT, LAYER_IG):
        path = cache / f"subset-{spec.key}-{n_rows}-{steps}.pkl"
        if path.exists():
            frames[spec.key] = pd.read_pickle(path)
        else:
            method = build_method(
                spec.key,
                nx,
                pad_token_id=tok.pad_token_id,
                special_token_ids=(tok.cls_token_id, tok.sep_token_id),
                reduction="sum",
                ig_steps=steps,
            )
            frame = method_frame(
                method, model, ids, tokens, pad_token_id=tok.pad_token_id, id2label=id2label, probs=probs
            )
            frame["seconds"] = frame.attrs["seconds"]
            frame.to_pickle(path)
            frames[spec.key] = frame
        seconds[spec.key] = float(frames[spec.key]["seconds"].iloc[0])
        _log(f"subset {spec.key}: {seconds[spec.key]:.1f} s")
    specials = tok.all_special_tokens
    opts = {"special_tokens": specials, "unit": pick["unit"], "contractions": pick["contractions"], "min_count": 3}
    truth = occlusion_table(model, tok, summarize(nx_frame, **opts), cache, f"subset{n_rows}", min_count=3)
    records, precision = [], []
    sources = {NORMXLOGIT.name: nx_frame, f"{LAYER_IG.short_name} ({steps} steps)": frames[LAYER_IG.key]}
    for source, frame in sources.items():
        summary = summarize(frame, **opts)
        for statistic in dict.fromkeys(["mean", "mean_z", pick["statistic"]]):
            for row in ranking_metrics(summary, truth, statistic, min_count=3):
                records.append({"source": source, "statistic": statistic, **row})
        if source == NORMXLOGIT.name:
            shown = verified_top(summary, truth, pick["statistic"], k=pick["k"], min_count=3)
            for cls, part in shown.groupby("class"):
                precision.append(
                    {
                        "class": cls,
                        "source": f"{source} {pick['statistic']}, verified top {pick['k']}",
                        "precision@10": float((part["effect_low"] > 0).mean()),
                    }
                )
    table = _pivot(pd.DataFrame(records).assign(set=f"{n_rows} RT check rows"), ["set", "source", "statistic"])
    _write(
        out,
        "ranking_layerig",
        table,
        f"{n_rows} rows of the RT check half: NormXLogit and LayerIG against occlusion (min_count 3)",
    )
    unverified = pd.DataFrame(records)[lambda t: t["statistic"].isin(["mean", pick["statistic"]])]
    for _, r in unverified.iterrows():
        precision.append(
            {
                "class": r["class"],
                "source": f"{r['source']} {r['statistic']}, unverified",
                "precision@10": r["precision@10"],
            }
        )
    prec = (
        pd.DataFrame(precision)
        .pivot_table(index="source", columns="class", values="precision@10", sort=False)
        .reset_index()
    )
    _write(
        out,
        "ranking_precision",
        prec,
        "precision@10 (share of the shown top 10 whose 95 % effect interval lies above 0)",
    )
    meta = {
        "rows": n_rows,
        "ig_steps": steps,
        "seconds": seconds,
        "ratio": seconds[LAYER_IG.key] / seconds[NORMXLOGIT.key],
        "threads": torch.get_num_threads(),
    }
    (out / "ranking_layerig_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _pooled(parts: List[Any]) -> Any:
    r"""Occlusion effects of the same (class, word) measured on disjoint rows, pooled: the mean
    over all measured examples and the standard error of that mean."""
    import numpy as np
    import pandas as pd

    t = pd.concat(parts, ignore_index=True)
    t = t.assign(var=(t["effect_se"] ** 2 * t["n_examples"]).fillna(0.0))
    out = []
    for (cls, item), g in t.groupby(["class", "item"], sort=False):
        n = g["n_examples"].sum()
        mean = float((g["effect"] * g["n_examples"]).sum() / n)
        ss = float(((g["n_examples"] - 1) * g["var"] + g["n_examples"] * (g["effect"] - mean) ** 2).sum())
        out.append(
            {
                "class": cls,
                "item": item,
                "n_examples": int(n),
                "effect": mean,
                "effect_se": float(np.sqrt(ss / (n - 1) / n)) if n > 1 else float("nan"),
                "halves": len(g),
            }
        )
    return pd.DataFrame(out)


def run_top(out: Path, cache: Path, pick: Dict[str, Any], n: int = 20) -> None:
    r"""The committed real run: the RT 4,000's top ``n`` per class, candidates by the chosen
    statistic, ordered by the lower end of the effect's interval. The effects pool the two
    halves' occlusion tables (each word at most 60 examples per half); a candidate not in both
    is measured on all 4,000 rows directly."""
    import pandas as pd

    from captum_normxlogit.dataset.ablation import ablation_effects
    from studies.ranking_metrics import verified_top

    run = rt_frame(cache)
    opts = {
        "special_tokens": run["tokenizer"].all_special_tokens,
        "unit": pick["unit"],
        "contractions": pick["contractions"],
    }
    summary = summarize(run["frame"], statistic=pick["statistic"], **opts)
    k = max(pick["k"], n)
    tables = [
        occlusion_path(cache, h, 2000, MIN_COUNT, OCCLUSION_CAP, pick["contractions"])
        for h in ("rt-choose", "rt-check")
    ]
    pooled = _pooled([pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in tables])
    pooled = pooled[pooled["halves"] == 2]
    items = {c: summary.top(c, k)["item"].tolist() for c in summary.classes}
    missing = {c: [w for w in ws if w not in set(pooled.loc[pooled["class"] == c, "item"])] for c, ws in items.items()}
    start = time.perf_counter()
    label2id = {v: int(i) for i, v in run["model"].config.id2label.items()}
    direct = ablation_effects(
        run["model"],
        summary,
        missing,
        class_ids=label2id,
        replacement_id=run["tokenizer"].mask_token_id,
        pad_token_id=run["tokenizer"].pad_token_id,
        max_examples=120,
        seed=0,
    )
    effects = pd.concat([pooled, direct], ignore_index=True)
    shown = verified_top(summary, effects, pick["statistic"], k=k, min_count=summary.min_count, n=n)
    shown["interval excludes 0"] = shown["effect_low"] > 0
    cols = [
        "class",
        "verified_rank",
        "rank",
        "item",
        "count",
        pick["statistic"],
        "effect",
        "effect_low",
        "effect_high",
        "n_examples",
        "interval excludes 0",
    ]
    shown = shown[cols].rename(columns={"rank": "candidate rank", "n_examples": "n"})
    title = (
        f"RT 4,000: top {n} per class of the top {k} candidates by {pick['statistic']} (unit {pick['unit']}, "
        f"contractions {pick['contractions']}), ordered by the lower end of the effect's 95 % interval; "
        f"{sum(map(len, missing.values()))} candidates measured directly ({time.perf_counter() - start:.0f} s)"
    )
    _write(out, "ranking_top_rt4000", shown, title)


def main(argv: Optional[List[str]] = None) -> int:
    r"""``python -m studies.ranking [--task grid|check|layerig|top|all] [--output DIR] [--cache DIR]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m studies.ranking", description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=("grid", "check", "layerig", "top", "all"), default="all")
    parser.add_argument("--output", default=OUT, metavar="DIR")
    parser.add_argument("--cache", default=None, metavar="DIR", help="default: the package cache's studies/ranking")
    parser.add_argument("--shortcut-recall", action="store_true", help="check: also recall on the planted MiniLM")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out, cache = Path(args.output), study_cache(args.cache)
    choice = out / "ranking_choice.json"
    if args.task in ("grid", "all"):
        run_grid(out, cache)
    pick = json.loads(choice.read_text())
    if args.task in ("check", "all"):
        run_check(out, cache, pick, shortcut_recall=args.shortcut_recall)
    if args.task in ("layerig", "all"):
        run_layerig(out, cache, pick)
    if args.task in ("top", "all"):
        run_top(out, cache, pick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
