r"""Views of a :class:`~captum_normxlogit.dataset.summary.DatasetSummary`: Markdown, a bar
chart PNG of the top items per class, and an HTML page with example sentences rendered by
:func:`captum_normxlogit.visualization.render_html`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from captum_normxlogit._utils.atomic import atomic_file, atomic_write_text
from captum_normxlogit.dataset.summary import DatasetSummary, item_positions
from captum_normxlogit.dataset.verify import VerifiedSummary

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["AXIS_LABELS", "contrast_markdown", "markdown_table", "plot_top", "summary_markdown", "write_html_report"]

_SHOWN = ("rank", "item", "count", "mean", "lcb", "mean_maxabs", "mean_z", "lcb_z", "top_share")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value).replace("|", "\\|")


def _is_verified(summary: DatasetSummary) -> bool:
    return isinstance(summary, VerifiedSummary)


# what each statistic is, for the chart's axis
AXIS_LABELS = {
    "mean": "mean score (summed over the word's occurrences in an example)",
    "lcb": "95 % lower bound of the mean score",
    "mean_maxabs": "mean of score ÷ the example's max |score|",
    "lcb_maxabs": "95 % lower bound of score ÷ the example's max |score|",
    "mean_z": "mean score standardised within its example (z)",
    "lcb_z": "95 % lower bound of the within-example z",
    "top_share": "share of examples where it scores highest",
    "contrast_z": "mean z minus its mean z in other classes",
    "lcb_contrast_z": "95 % lower bound of z minus z in other classes",
}


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
        + f". Items are {level}s; ranked by `{statistic}` ({AXIS_LABELS.get(statistic, statistic)}) among items "
        f"in at least {summary.min_count} examples of the class. An item's score in an example is the "
        f"{'sum' if summary.unit == 'sum' else 'mean'} over its occurrences there; `mean_maxabs` divides by the "
        "example's largest |score|, `mean_z` standardises within the example, `contrast_z` subtracts the item's "
        "mean z in the other classes; `lcb*` is the one-sided 95 % lower bound.",
    ]
    verified = _is_verified(summary)
    if isinstance(summary, VerifiedSummary):
        parts.append(
            f"\nVerified: the top {summary.top_k} candidates of each class by `{statistic}` occluded "
            f"(every occurrence masked) on at most {summary.max_examples} examples each; `effect` is the "
            "mean drop of P(class), `low`/`high` its 95 % bootstrap-t interval, `n` the examples measured. "
            "Ordered by `low`; `mark` is `≈0` when the interval includes 0 and `against` when it lies below 0 "
            "(blank: the word pushes towards the class). `candidate` is the rank by the statistic."
        )
    for cls in sorted(summary.classes):
        top = summary.top(cls, n, level=level, statistic=statistic)
        if verified:
            shown = top.assign(low=top["effect_low"], high=top["effect_high"], candidate=top["candidate_rank"])
            shown = shown.assign(mark=[v if v != "towards" else "" for v in top["verdict"]], n=top["n"].astype(int))
            columns = ["rank", "item", "count", statistic, "effect", "low", "high", "n", "mark", "candidate"]
            parts.append(f"\n### {cls}\n\n" + markdown_table(shown[columns]))
        else:
            parts.append(f"\n### {cls}\n\n" + markdown_table(top[list(_SHOWN)]))
        special = summary.top(cls, None, level=level, statistic="mean", special=True, min_count=1)
        if len(special):
            parts.append(
                f"\nSpecial tokens ({cls}), by mean score:\n\n"
                + markdown_table(special[["item", "count", "mean", "mean_maxabs"]])
            )
    return "\n".join(parts) + "\n"


def contrast_markdown(contrast: Any, n: int = 10) -> str:
    r"""A :class:`~captum_normxlogit.dataset.compare.SummaryContrast` as Markdown: per class, the
    ``n`` words that gained most weight from run a to run b, then the ``n`` that lost most.

    Returns:
        str
    """
    stat = contrast.statistic
    parts = [
        f"Run b against run a on the same {contrast.n_rows:,} rows: `delta` is `{stat}` in b minus `{stat}` in a, "
        f"over the {contrast.level}s ranked in both."
        + (" `effect_a` / `effect_b`: occlusion effect on each model (95 % interval)." if contrast.verified else "")
    ]
    columns = ["item", "count_a", "count_b", "stat_a", "stat_b", "delta", "rank_a", "rank_b"]
    for cls in sorted(set(contrast.table["class"])):
        for direction in ("gained", "lost"):
            part = contrast.changed(cls, n, direction=direction)
            shown = part[columns].rename(columns={"stat_a": f"{stat}_a", "stat_b": f"{stat}_b"})
            if contrast.verified:
                for side in ("a", "b"):
                    shown[f"effect_{side}"] = [
                        f"{e:+.3f} [{lo:+.3f}, {hi:+.3f}]" if e == e else "–"
                        for e, lo, hi in zip(part[f"effect_{side}"], part[f"low_{side}"], part[f"high_{side}"])
                    ]
            parts.append(f"\n### {cls}: {direction} weight in b\n\n" + (markdown_table(shown) if len(part) else "none"))
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
    r"""A bar chart PNG of the top ``n`` items of each class, one scale for every class.

    For each class a panel of the statistic (axis labelled with what it is); for a verified
    summary (or with ``effects`` from
    :func:`~captum_normxlogit.dataset.ablation.ablation_effects`) a second panel beside it with
    the occlusion effect and its 95 % interval, green when the interval is above 0, red below,
    grey when it includes 0. Written atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    statistic = statistic or summary.statistic
    classes = sorted(summary.classes)
    verified = _is_verified(summary)
    tops = {cls: summary.top(cls, n, level=level, statistic=statistic) for cls in classes}
    if effects is not None and not verified:
        tops = {
            c: t.merge(effects[effects["class"] == c][["item", "effect"]], on="item", how="left")
            for c, t in tops.items()
        }
    with_effect = verified or effects is not None
    columns = 2 if with_effect else 1
    fig, axes = plt.subplots(
        1,
        columns * len(classes),
        figsize=(3.2 * columns * len(classes), 0.3 * n + 1.9),
        squeeze=False,
        layout="constrained",  # each panel gets the label room it needs (tight_layout spaces them evenly)
    )
    values = np.concatenate([t[statistic].to_numpy(dtype=float) for t in tops.values()] + [np.zeros(1)])
    stat_lim = (min(0.0, float(np.nanmin(values))) * 1.1, max(0.0, float(np.nanmax(values))) * 1.1 or 1.0)
    if with_effect:
        parts = [t["effect"].to_numpy(dtype=float) for t in tops.values()]
        if verified:
            parts += [t["effect_low"].to_numpy(dtype=float) for t in tops.values()]
            parts += [t["effect_high"].to_numpy(dtype=float) for t in tops.values()]
        effect_values = np.concatenate(parts + [np.zeros(1)])
        effect_lim = (
            min(0.0, float(np.nanmin(effect_values))) * 1.1 - 0.01,
            max(0.0, float(np.nanmax(effect_values))) * 1.1 + 0.01,
        )
    for k, cls in enumerate(classes):
        top = tops[cls]
        ys = np.arange(len(top))[::-1]
        ax = axes[0][columns * k]
        labels = [f"{w} ({c} ex.)" for w, c in zip(top["item"], top["count"])]  # n is the measured count
        ax.barh(ys, top[statistic], color="#5b7db1")
        ax.set_yticks(ys, labels, fontsize=8)
        ax.set_xlim(*stat_lim)
        ax.set_title(f"{cls} ({summary.classes[cls]} examples)", fontsize=10)
        ax.set_xlabel(f"{statistic}:\n{AXIS_LABELS.get(statistic, statistic)}", fontsize=7)  # 2 lines: fits
        if with_effect:
            ax2 = axes[0][columns * k + 1]
            effect = top["effect"].to_numpy(dtype=float)
            if verified:
                low, high = top["effect_low"].to_numpy(dtype=float), top["effect_high"].to_numpy(dtype=float)
                colours = [
                    "#bbbbbb" if z else ("#2e7d32" if e > 0 else "#c62828")
                    for z, e in zip(top["effect_includes_0"], effect)
                ]
                err = np.vstack([np.nan_to_num(effect - low), np.nan_to_num(high - effect)])
                ax2.barh(ys, effect, color=colours, xerr=err, error_kw={"elinewidth": 0.8, "capsize": 2})
            else:
                ax2.barh(ys, effect, color="#888888")
            ax2.axvline(0, color="#333", linewidth=0.6)
            ax2.set_yticks(ys, [""] * len(ys))
            ax2.tick_params(axis="y", length=0)
            ax2.set_ylim(ax.get_ylim())
            ax2.set_xlim(*effect_lim)
            ax2.set_title("occlusion effect", fontsize=9)
            ax2.set_xlabel("drop of P(class) when masked, 95 % interval", fontsize=7)
    order = " (ordered by the interval's lower bound; grey: it includes 0, red: below 0)" if verified else ""
    fig.suptitle(title or f"Top {level}s per class by {statistic}{order}", fontsize=10)
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
    settings: Optional[Dict[str, Any]] = None,
    centred: bool = True,
) -> None:
    r"""An HTML page: a table per class of its top ``n`` items (statistic, and for a verified
    summary the effect with its interval), a contents line and the run's settings on top, then
    under each class one folded section per item with up to ``examples_per_item`` examples
    (those where it scores highest), the item outlined, the gold label shown. Written atomically.

    Args:
        settings (dict of str to str, optional): Facts stated under the title (model, time, ...).
            Default: None
        centred (bool, optional): Colour each word by its score minus the example's mean (the
            unit the ranking uses), the raw score on hover; False colours raw scores. Default: True
    """
    from captum_normxlogit.dataset._page import summary_page

    statistic = statistic or summary.statistic
    tops = {cls: summary.top(cls, n, level=level, statistic=statistic) for cls in sorted(summary.classes)}
    examples = {
        cls: {item: _examples_for(summary, cls, item, level, examples_per_item) for item in top["item"]}
        for cls, top in tops.items()
    }
    page = summary_page(
        summary,
        tops,
        examples,
        statistic=statistic,
        level=level,
        title=title,
        settings=settings,
        centred=centred,
        statistic_label=AXIS_LABELS.get(statistic, statistic),
    )
    atomic_write_text(Path(path), page)
