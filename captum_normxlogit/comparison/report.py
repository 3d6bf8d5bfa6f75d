r"""Rendering for :class:`~captum_normxlogit.comparison.ComparisonResult`: the Markdown report and the curve figure."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, List, Optional

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure


from captum_normxlogit.methods import NORMXLOGIT, RANDOM

__all__ = ["COLUMNS", "curves_figure", "markdown_report"]

# table column -> (header, direction: +1 higher is better, -1 lower is better, 0 not a metric, format)
COLUMNS: Dict[str, tuple] = {
    "comp_aopc": ("Comp ↑", 1, "{:.3f}"),
    "suff_aopc": ("Suff ↓", -1, "{:.3f}"),
    "comp_acc_aopc": ("Comp acc ↓", -1, "{:.3f}"),
    "suff_acc_aopc": ("Suff acc ↑", 1, "{:.3f}"),
    "eraser_comp_aopc": ("ERASER comp ↑", 1, "{:.3f}"),
    "eraser_suff_aopc": ("ERASER suff ↓", -1, "{:.3f}"),
    "eraser_comp_acc_aopc": ("ERASER comp acc ↓", -1, "{:.3f}"),
    "eraser_suff_acc_aopc": ("ERASER suff acc ↑", 1, "{:.3f}"),
    "seconds": ("time (s)", 0, "{:.2f}"),
    "ms_per_example": ("ms / example", 0, "{:.1f}"),
    "peak_mib": ("peak MiB", 0, "{:,.0f}"),
}


def _cell(value: Any, fmt: str, best: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = fmt.format(value)
    return f"**{text}**" if best else text


def markdown_table(table: "pd.DataFrame") -> str:
    r"""The table as GitHub Markdown; the best value of each metric column in bold."""
    columns = [c for c in COLUMNS if c in table.columns and not table[c].isna().all()]
    lines = ["| method | " + " | ".join(COLUMNS[c][0] for c in columns) + " |", "|---|" + "---:|" * len(columns)]
    best = {}
    for c in columns:
        direction = COLUMNS[c][1]
        if direction:
            best[c] = table[c].max() if direction > 0 else table[c].min()
    for _, row in table.iterrows():
        cells = [_cell(row[c], COLUMNS[c][2], c in best and row[c] == best[c]) for c in columns]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(
    table: "pd.DataFrame", settings: Dict[str, Any], notes: List[str], image: Optional[str] = None
) -> str:
    r"""Title, notes, the table, the settings and the figure link.

    Takes a ``ComparisonResult``'s fields as plain data, so that this module does not import
    :mod:`.run` (which imports it).
    """
    parts: List[str] = [f"# {settings.get('title', 'Faithfulness comparison')}", ""]
    parts += [*notes, ""] if notes else []
    parts += [
        markdown_table(table),
        "",
        "Comp / Suff: mean drop of the explained class's probability over K = 10..90 % of the tokens "
        "removed (comprehensiveness) or kept (sufficiency), the paper's Comp_CD / Suff_CD. Acc: accuracy "
        "against the gold labels on the perturbed inputs. ERASER: the same averaged over K = 1, 5, 10, 20, "
        "50 %. Time and memory are the attribution calls alone (not the metrics); best value per metric in bold.",
        "",
        "## Settings",
        "",
    ]
    parts += [f"- {key}: {value}" for key, value in settings.items() if key != "title"]
    if image:
        parts += ["", f"![comprehensiveness and sufficiency curves]({image})"]
    return "\n".join(parts) + "\n"


def curves_figure(curves: "pd.DataFrame", title: str) -> "Figure":
    r"""A matplotlib ``Figure`` (no pyplot state) with one panel per kind and variant, paper ratios."""
    from matplotlib.figure import Figure

    paper = curves[curves["protocol"] == "paper"]
    variants = [("prob_drop", "drop in p(explained class)")]
    if not paper["accuracy"].isna().all():
        variants.append(("accuracy", "accuracy (gold labels)"))
    figure = Figure(figsize=(11, 4.2 * len(variants)))
    axes = figure.subplots(len(variants), 2, squeeze=False)
    methods = list(dict.fromkeys(paper["method"]))
    colours = {m: f"C{i % 10}" for i, m in enumerate(m for m in methods if m != RANDOM.name)}
    for r, (column, ylabel) in enumerate(variants):
        for c, (kind, better) in enumerate((("comprehensiveness", "higher"), ("sufficiency", "lower"))):
            if column == "accuracy":
                better = "lower" if kind == "comprehensiveness" else "higher"
            ax = axes[r][c]
            for method in methods:
                sel = paper[(paper["method"] == method) & (paper["kind"] == kind)]
                style = dict(color="0.5", linestyle="--") if method == RANDOM.name else dict(color=colours[method])
                width = 2.4 if method == NORMXLOGIT.name else 1.4
                ax.plot(
                    100 * sel["ratio"], sel[column], marker="o", markersize=3, linewidth=width, label=method, **style
                )
            ax.set_title(f"{kind} ({better} is better)")
            ax.set_xlabel("K: % of tokens " + ("removed" if kind == "comprehensiveness" else "kept"))
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
    axes[0][1].legend(fontsize=8, loc="best")
    figure.suptitle(title)
    figure.tight_layout()
    return figure
