r"""Files of the agreement experiment: the tidy CSV, a Markdown summary and the per-layer plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pandas as pd

from captum_normxlogit._commands.evaluate.agreement_items import PARADIGMS
from captum_normxlogit._utils.atomic import atomic_file, atomic_write_text
from captum_normxlogit.methods import LAYER_IG, LOGAT, NORM, NORMXLOGIT, RANDOM

__all__ = ["write_report"]

_PARADIGM_NAMES = {"all": "all items", "sva": "subject–verb", "dna": "determiner–noun", "ana": "anaphor"}


def _layer_methods(table: pd.DataFrame) -> List[str]:
    return list(dict.fromkeys(table.loc[table["layer"].notna(), "method"]))


def _flat_methods(table: pd.DataFrame) -> List[str]:
    return list(dict.fromkeys(table.loc[table["layer"].isna(), "method"]))


def _fmt(value: float, se: float) -> str:
    return f"{value:.3f} ± {se:.3f}" if pd.notna(se) else f"{value:.3f}"


def _summary(table: pd.DataFrame) -> List[str]:
    top = int(table["layer"].max())
    lines = [
        f"| method | AP, layer {top} | best AP (layer) | AP mean, layers 1–{top} "
        f"| DP, layer {top} | best DP (layer) | DP mean, layers 1–{top} | cue > distractor, layer {top} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = table[table["paradigm"] == "all"]
    for method in _layer_methods(table):
        r = rows[rows["method"] == method].set_index("layer")
        cells = []
        for metric in ("ap", "dp"):
            best = int(r[metric].idxmax())
            cells += [
                _fmt(r.loc[top, metric], r.loc[top, f"{metric}_se"]),
                f"{r.loc[best, metric]:.3f} ({best})",
                f"{r.loc[1:top, metric].mean():.3f}",
            ]
        cells.append(f"{r.loc[top, 'cue_wins']:.3f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    for method in _flat_methods(table):
        r = rows[rows["method"] == method].iloc[0]
        lines.append(
            f"| {method} | {_fmt(r['ap'], r['ap_se'])} | – | – | {_fmt(r['dp'], r['dp_se'])} | – | – "
            f"| {r['cue_wins']:.3f} |"
        )
    return lines


def _by_paradigm(table: pd.DataFrame) -> List[str]:
    top = int(table["layer"].max())
    paradigms = [p for p in PARADIGMS if p in set(table["paradigm"])] + ["all"]
    header = " | ".join(f"{m} {p}" for m in ("AP", "DP") for p in paradigms)
    lines = [f"| method | {header} |", "|---" * (1 + 2 * len(paradigms)) + "|"]
    rows = table[table["layer"].isna() | (table["layer"] == top)]
    for method in _layer_methods(table) + _flat_methods(table):
        r = rows[rows["method"] == method].set_index("paradigm")
        cells = [f"{r.loc[p, m]:.3f}" for m in ("ap", "dp") for p in paradigms]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _per_layer(table: pd.DataFrame) -> List[str]:
    methods = _layer_methods(table)
    rows = table[(table["paradigm"] == "all") & table["layer"].notna()]
    header = " | ".join(f"{m} {metric}" for metric in ("AP", "DP") for m in methods)
    lines = [f"| layer | {header} |", "|---" * (1 + 2 * len(methods)) + "|"]
    for layer, group in rows.groupby("layer"):
        r = group.set_index("method")
        cells = [f"{r.loc[m, metric]:.3f}" for metric in ("ap", "dp") for m in methods]
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return lines


def _markdown(table: pd.DataFrame, accuracy: pd.DataFrame, dropped_items: Dict[str, int], s: Dict[str, Any]) -> str:
    top = int(table["layer"].max())
    n = int(accuracy.set_index("paradigm").loc["all", "n_items"])
    dropped = ", ".join(f"{reason}: {count}" for reason, count in dropped_items.items()) or "none"
    lines = [
        f"# Evidence alignment: {s.get('model', 'model')} on agreement items",
        "",
        f"`run_agreement` (`normxlogit evaluate --task agreement-smollm2`): {n} items, "
        f"{LAYER_IG.name} with {s.get('ig_steps')} steps, batch {s.get('batch_size')}, "
        f"device {s.get('device')}, {s.get('seconds')} s in all.",
        "",
        "Each item is a prefix ending right before the agreeing word; every method explains the logit of the "
        "good word. Evidence = the cue word's tokens (subject noun, determiner, antecedent); the distractor noun "
        "(other number) is never evidence. AP = average precision of the signed ranking (higher is better); "
        f"DP = share of the normalised scores on the cue (softmax for {NORMXLOGIT.name}, {LOGAT.name} and "
        f"{NORM.name} as in the paper, division by the sum for the l1-reduced gradient methods, uniform for "
        f"{RANDOM.name}). Layer l: the head reads "
        f"hidden state l (0 = embedding output, {top} = the final scores); the norm stays at layer 0. "
        f'"good−bad" explains logit(good) − logit(bad); "{LOGAT.name} (bad word)" is the paper\'s LogAt(Foil). '
        '± is one standard error over items. "cue > distractor": share of items where the cue\'s best token '
        "outscores the distractor noun's best token.",
        "",
        "## Items and the model's accuracy",
        "",
        "| paradigm | items | accuracy (logit good > bad) |",
        "|---|---|---|",
    ]
    for _, r in accuracy.iterrows():
        lines.append(f"| {_PARADIGM_NAMES.get(r['paradigm'], r['paradigm'])} | {r['n_items']} | {r['accuracy']:.3f} |")
    lines += [
        "",
        f"Dropped before scoring: {dropped}.",
        "",
        "## Summary, all items",
        "",
        *_summary(table),
        "",
        f"## By paradigm (layer-wise methods at layer {top})",
        "",
        *_by_paradigm(table),
        "",
        "## Per layer, all items",
        "",
        *_per_layer(table),
        "",
    ]
    return "\n".join(lines)


def _plot(table: pd.DataFrame, model: str, path: Path) -> None:
    from matplotlib.figure import Figure

    paradigms = ["all"] + [p for p in PARADIGMS if p in set(table["paradigm"])]
    figure = Figure(figsize=(4.2 * len(paradigms), 7.5), layout="constrained")
    axes = figure.subplots(2, len(paradigms), squeeze=False, sharex=True)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:olive", "tab:purple", "tab:red", "tab:brown", "tab:gray"]
    for row, (metric, label) in enumerate((("ap", "average precision"), ("dp", "dot product"))):
        for col, paradigm in enumerate(paradigms):
            ax = axes[row][col]
            part = table[table["paradigm"] == paradigm]
            for i, method in enumerate(_layer_methods(table)):
                r = part[part["method"] == method].sort_values("layer")
                ax.plot(r["layer"].astype(int), r[metric], marker=".", color=colours[i], label=method)
            offset = len(_layer_methods(table))
            for i, method in enumerate(_flat_methods(table)):
                value = float(part.loc[part["method"] == method, metric].iloc[0])
                ax.axhline(value, linestyle="--", color=colours[(offset + i) % len(colours)], label=method)
            ax.set_title(f"{_PARADIGM_NAMES[paradigm]}: {label}")
            ax.grid(alpha=0.3)
            if row == 1:
                ax.set_xlabel("layer (hidden state the head reads)")
            if col == 0:
                ax.set_ylabel(label)
    axes[0][0].legend(fontsize=7, loc="best")
    figure.suptitle(f"Evidence alignment per layer, {model}")
    with atomic_file(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)


def write_report(
    table: pd.DataFrame,
    accuracy: pd.DataFrame,
    dropped: Dict[str, int],
    settings: Dict[str, Any],
    output_dir: Path,
) -> List[Path]:
    r"""Write ``agreement.csv``, ``agreement.md`` and ``agreement_layers.png``
    into ``output_dir`` (created if needed), each atomically.

    Takes the fields of an ``AgreementResult`` as plain data, so that this module does not
    import :mod:`.agreement` (which imports it to write).

    Returns:
        list of pathlib.Path: The three files.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    csv, markdown, png = (output_dir / name for name in ("agreement.csv", "agreement.md", "agreement_layers.png"))
    atomic_write_text(csv, table.to_csv(index=False, float_format="%.6f"))
    atomic_write_text(markdown, _markdown(table, accuracy, dropped, settings))
    _plot(table, settings.get("model", ""), png)
    return [csv, markdown, png]
