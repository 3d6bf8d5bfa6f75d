r"""Views of a :class:`~captum_normxlogit.dataset.summary.DatasetSummary`: Markdown, a bar
chart PNG of the top items per class, and an HTML page with example sentences rendered by
:func:`captum_normxlogit.visualization.render_html`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

from captum_normxlogit._utils.atomic import atomic_file, atomic_write_text
from captum_normxlogit.dataset.summary import DatasetSummary, item_positions

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["markdown_table", "plot_top", "summary_markdown", "write_html_report"]

_SHOWN = ("rank", "item", "count", "mean", "lcb", "mean_maxabs", "mean_z", "lcb_z", "top_share")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value).replace("|", "\\|")


def markdown_table(table: "pd.DataFrame") -> str:
    r"""A GitHub Markdown table of ``table`` (no ``tabulate`` needed)."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines)


def summary_markdown(
    summary: DatasetSummary, n: int = 20, *, level: str = "word", statistic: Optional[str] = None
) -> str:
    r"""The summary as Markdown: what was counted, then the top ``n`` items of every class
    and the special tokens apart.

    Returns:
        str
    """
    statistic = statistic or summary.statistic
    parts = [
        f"{summary.n_rows} rows, {summary.n_skipped} skipped with an error; classes: "
        + ", ".join(f"{c} ({k} examples)" for c, k in sorted(summary.classes.items()))
        + f". Items are {level}s; ranked by `{statistic}` among items in at least {summary.min_count} "
        "examples of the class. Scores summed per item and example; `mean_maxabs` divides by the example's "
        "largest |score|, `mean_z` standardises within the example; `lcb*` is the one-sided 95 % lower bound.",
    ]
    for cls in sorted(summary.classes):
        top = summary.top(cls, n, level=level, statistic=statistic)
        parts.append(f"\n### {cls}\n\n" + markdown_table(top[list(_SHOWN)]))
        special = summary.top(cls, None, level=level, statistic="mean", special=True, min_count=1)
        if len(special):
            parts.append(
                f"\nSpecial tokens ({cls}), by mean score:\n\n"
                + markdown_table(special[["item", "count", "mean", "mean_maxabs"]])
            )
    return "\n".join(parts) + "\n"


def plot_top(
    summary: DatasetSummary,
    path: Any,
    n: int = 15,
    *,
    level: str = "word",
    statistic: Optional[str] = None,
    title: str = "",
    effects: Optional["pd.DataFrame"] = None,
) -> None:
    r"""A bar chart PNG, one panel per class, of the top ``n`` items by ``statistic``;
    with ``effects`` (from :func:`~captum_normxlogit.dataset.ablation.ablation_effects`)
    each bar is labelled with its measured ablation effect. Written atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    statistic = statistic or summary.statistic
    classes = sorted(summary.classes)
    fig, axes = plt.subplots(1, len(classes), figsize=(4.6 * len(classes), 0.32 * n + 1.6), squeeze=False)
    for ax, cls in zip(axes[0], classes):
        top = summary.top(cls, n, level=level, statistic=statistic)
        labels = [f"{w} (n={c})" for w, c in zip(top["item"], top["count"])]
        ax.barh(range(len(top))[::-1], top[statistic], color="#2e7d32")
        ax.set_yticks(range(len(top))[::-1], labels, fontsize=8)
        ax.set_title(f"{cls} ({summary.classes[cls]} examples)", fontsize=10)
        ax.set_xlabel(statistic)
        if effects is not None:
            measured = effects[effects["class"] == cls].set_index("item")["effect"]
            for y, item in zip(range(len(top))[::-1], top["item"]):
                if item in measured.index:
                    ax.annotate(
                        f"Δp {measured[item]:+.3f}",
                        (0, y),
                        xytext=(3, 0),
                        textcoords="offset points",
                        va="center",
                        fontsize=7,
                        color="white",
                    )
    fig.suptitle(title or f"Top {level}s per class by {statistic}", fontsize=11)
    fig.tight_layout()
    with atomic_file(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _examples_for(summary: DatasetSummary, cls: str, item: str, level: str, k: int) -> List[int]:
    r"""Rows of ``cls`` containing ``item`` where it scores highest, up to ``k``."""
    import numpy as np

    frame = summary.frame
    label = frame["target_label"] if "target_label" in frame.columns else frame["target"]
    found = []
    special = set(summary.special_tokens)
    for r in np.flatnonzero(label.astype(str).to_numpy() == cls):
        positions = item_positions(
            list(frame.at[r, "tokens"]), level, summary.scheme, special, contractions=summary.contractions
        ).get(item)
        if positions:
            found.append((float(np.asarray(frame.at[r, summary.score_column])[positions].sum()), int(r)))
    return [r for _, r in sorted(found, reverse=True)[:k]]


def write_html_report(
    summary: DatasetSummary,
    path: Any,
    n: int = 10,
    *,
    examples_per_item: int = 3,
    level: str = "word",
    statistic: Optional[str] = None,
    title: str = "Dataset summary",
) -> None:
    r"""An HTML page: per class, the top ``n`` items and, for each, up to
    ``examples_per_item`` examples (those where it scores highest) rendered with the
    package's HTML view, words merged. Written atomically."""
    import torch

    from captum_normxlogit.visualization import ExplainedExample, render_html

    statistic = statistic or summary.statistic
    frame = summary.frame
    examples = []
    for cls in sorted(summary.classes):
        top = summary.top(cls, n, level=level, statistic=statistic)
        for row in top.itertuples(index=False):
            for r in _examples_for(summary, cls, row.item, level, examples_per_item):
                tokens = list(frame.at[r, "tokens"])
                scores = torch.as_tensor(list(frame.at[r, summary.score_column]), dtype=torch.float32)
                prob = frame.at[r, "prob"] if "prob" in frame.columns else float("nan")
                examples.append(
                    ExplainedExample(
                        f"{cls} #{row.rank}: {row.item}",
                        tokens,
                        {summary.score_column: scores},
                        subtitle=f"{statistic} {getattr(row, statistic):.3g}, in {row.count} examples; "
                        f"example {frame.at[r, 'index'] if 'index' in frame.columns else r}, p={prob:.3f}",
                    )
                )
    note = (
        f"Top {level}s of each class by {statistic} (at least {summary.min_count} examples), each with the "
        f"examples where it scores highest. {summary.n_skipped} of {summary.n_rows} rows were skipped with errors."
    )
    page = render_html(
        examples,
        title=title,
        note=note,
        merge_words=level == "word",
        scheme=summary.scheme,
        special_tokens=summary.special_tokens,
    )
    atomic_write_text(Path(path), page)
