r"""The summary's HTML page: a table per class on top, the examples folded under it, one heading per word.

Examples are drawn **centred**: each word's colour is its score minus the mean score of the
example's (non-special) words, the unit of the summary's within-example ``*_z`` statistics, divided by the
example's largest ``|centred|``; the raw score is on hover. NormXLogit's raw last-layer scores
are positive on most words of most sentences, so colouring them raw gives a near-uniform page.
"""

from __future__ import annotations

import html
import math
from typing import Any, Dict, List, Optional

import numpy as np

from captum_normxlogit.dataset.summary import DatasetSummary, item_positions
from captum_normxlogit.dataset.verify import VerifiedSummary
from captum_normxlogit.visualization.colours import hex_colour, signed_rgb, text_rgb
from captum_normxlogit.visualization.tokens import merge_subwords, visible_text, word_groups

__all__ = ["summary_page"]

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.2rem 1.5rem;color:#222;max-width:70rem}
h1{font-size:1.3rem;margin:.2rem 0 .4rem} h2{font-size:1.1rem;margin:1.4rem 0 .3rem;border-bottom:1px solid #ddd}
h3{font-size:.98rem;margin:.2rem 0;display:inline} p.note{color:#555;font-size:.86rem;max-width:66rem;margin:.3rem 0}
table.top{border-collapse:collapse;font-size:.86rem;margin:.3rem 0 .8rem}
table.top th{text-align:left;border-bottom:1px solid #999;padding:.15rem .5rem;font-weight:600}
table.top td{padding:.12rem .5rem;border-bottom:1px solid #eee;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums} td.w{font-family:ui-monospace,monospace}
.bar{display:inline-block;height:.7rem;vertical-align:middle;border-radius:.1rem}
.zero{color:#999} .mark{font-size:.75rem;color:#a15c00;margin-left:.3rem}
details{margin:.15rem 0 .15rem 0;border-left:3px solid #ddd;padding-left:.6rem}
summary{cursor:pointer} div.ex{margin:.25rem 0 .45rem;line-height:1.9}
span.t{font-family:ui-monospace,monospace;font-size:.88rem;padding:.1rem .2rem;border-radius:.2rem}
span.f{outline:2px solid #111;font-weight:700}
span.meta{font-size:.78rem;color:#666;margin-left:.5rem;white-space:nowrap}
nav{font-size:.88rem;margin:.3rem 0 .6rem} nav a{margin-right:.8rem}
"""


def _esc(text: Any) -> str:
    return html.escape(visible_text(str(text)))


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.{digits}f}" if isinstance(value, float) else str(value)


def _bar(value: float, scale: float, colour: str) -> str:
    if not math.isfinite(value) or scale <= 0:
        return ""
    width = 6.0 * min(abs(value) / scale, 1.0)
    return f"<span class='bar' style='width:{width:.2f}rem;background:{colour}'></span>"


def _anchor(cls: str, item: str) -> str:
    return "w-" + "".join(c if c.isalnum() else f"_{ord(c):x}" for c in f"{cls}-{item}")


def _class_table(summary: DatasetSummary, top: Any, statistic: str, verified: bool) -> str:
    stat_scale = float(np.nanmax(np.abs(top[statistic]))) if len(top) else 0.0
    head = ["rank", "word", "count", statistic, ""]
    if verified:
        eff = top["effect"].abs().to_numpy(dtype=float)
        eff_scale = float(np.nanmax(eff)) if len(top) and np.isfinite(eff).any() else 0.0
        head += ["effect (Δp)", "95 % interval", "n", ""]
    rows = ["<table class='top'><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for row in top.itertuples(index=False):
        link = f"<a href='#{_anchor(row[top.columns.get_loc('class')], row.item)}'>{_esc(row.item)}</a>"
        value = float(getattr(row, statistic))
        cells = [
            f"<td class='num'>{row.rank}</td>",
            f"<td class='w'>{link}</td>",
            f"<td class='num'>{row.count}</td>",
            f"<td class='num'>{value:.3f}</td>",
            f"<td>{_bar(value, stat_scale, '#5b7db1')}</td>",
        ]
        if verified:
            effect, low, high = float(row.effect), float(row.effect_low), float(row.effect_high)
            zero = bool(row.effect_includes_0)
            colour = "#bbb" if zero else ("#2e7d32" if effect > 0 else "#c62828")
            why = {"≈0": "the interval includes 0", "against": "the interval lies below 0: it pushes away"}
            verdict = str(row.verdict)
            mark = f"<span class='mark' title='{why[verdict]}'>{verdict}</span>" if verdict in why else ""
            cls_ = " zero" if zero else ""
            cells += [
                f"<td class='num{cls_}'>{_num(effect)}</td>",
                f"<td class='num{cls_}'>[{_num(low)}, {_num(high)}]</td>",
                f"<td class='num'>{int(row.n)}</td>",
                f"<td>{_bar(effect, eff_scale, colour)}{mark}</td>",
            ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _example(summary: DatasetSummary, r: int, featured: str, level: str, raw_view: bool) -> str:
    frame = summary.frame
    tokens = list(frame.at[r, "tokens"])
    scores = np.asarray(frame.at[r, summary.score_column], dtype=np.float64)
    special = set(summary.special_tokens)
    if level == "word":
        import torch

        words, _ = merge_subwords(tokens, torch.zeros(len(tokens)), summary.scheme, special)
        groups = word_groups(tokens, summary.scheme, special)
    else:
        words, groups = list(tokens), [[i] for i in range(len(tokens))]
    raw = np.array([scores[g].sum() for g in groups])
    regular = np.array([w not in special for w in words])
    centre = float(raw[regular].mean()) if regular.any() else 0.0
    shown = raw if raw_view else raw - centre
    scale = float(np.abs(shown[regular]).max()) if regular.any() else 0.0
    featured_at = set(item_positions(tokens, level, summary.scheme, special).get(featured, []))
    spans = []
    for word, group, raw_value, value, keep in zip(words, groups, raw, shown, regular):
        if not keep:
            continue
        v = float(value / scale) if scale > 0 else 0.0
        style = f"background:{hex_colour(signed_rgb(v))};color:{hex_colour(text_rgb(v))}"
        f = " f" if featured_at.intersection(group) else ""
        hover = f"raw {raw_value:+.4g}" + ("" if raw_view else f"; centred {value:+.4g}")
        spans.append(f"<span class='t{f}' style='{style}' title='{_esc(hover)}'>{_esc(word)}</span>")
    meta = [f"example {frame.at[r, 'index'] if 'index' in frame.columns else r}"]
    if "prob" in frame.columns and frame.at[r, "prob"] is not None:
        meta.append(f"p = {float(frame.at[r, 'prob']):.3f}")
    gold = frame.at[r, "label"] if "label" in frame.columns else None
    if isinstance(gold, str) and gold:
        meta.append(f"gold: {gold}")
    # spaces between the words: the line may break there (adjacent spans alone never break)
    return f"<div class='ex'>{' '.join(spans)} <span class='meta'>{_esc(' · '.join(meta))}</span></div>"


def summary_page(
    summary: DatasetSummary,
    tops: Dict[str, Any],
    examples: Dict[str, Dict[str, List[int]]],
    *,
    statistic: str,
    level: str,
    title: str,
    settings: Optional[Dict[str, Any]] = None,
    centred: bool = True,
    statistic_label: str = "",
) -> str:
    r"""The page's HTML (see the module docstring); ``tops``, ``examples`` and ``statistic_label`` (what
    the statistic is, ``report.AXIS_LABELS``) come from the caller."""
    verified = isinstance(summary, VerifiedSummary)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        "<nav>Contents: " + "".join(f"<a href='#c-{_anchor(c, '')}'>{_esc(c)}</a>" for c in tops) + "</nav>",
    ]
    facts = dict(settings or {})
    facts.setdefault("rows", f"{summary.n_rows:,} ({summary.n_skipped:,} skipped with an error)")
    facts.setdefault("classes", ", ".join(f"{c} ({k:,})" for c, k in sorted(summary.classes.items())))
    facts.setdefault(
        "ranked by",
        f"{statistic} ({statistic_label or statistic}), among {level}s in at least {summary.min_count} "
        "examples of the class",
    )
    if isinstance(summary, VerifiedSummary):
        k, cap = summary.top_k, summary.max_examples
        facts.setdefault(
            "verified",
            f"top {k} candidates per class occluded (mask token over every occurrence), at most {cap} examples "
            "per word; order: the 95 % interval's lower bound; ≈0 marks an interval that includes 0, against one "
            "below 0",
        )
    parts.append("<p class='note'>" + " · ".join(f"<b>{_esc(k)}</b>: {_esc(v)}" for k, v in facts.items()) + "</p>")
    view = (
        "each word coloured by its score minus the example's mean word score (what the ranking uses), ÷ the "
        "example's largest |centred score|; the raw score on hover"
        if centred
        else "each word coloured by its raw score ÷ the example's largest |score|"
    )
    # centred colours compare a word with its sentence's average word, not with the class (docs/views.md)
    colours = (
        "Green: above the example's average word, red: below it (a red word can still push towards the class)"
        if centred
        else "Green pushes towards the explained class, red away"
    )
    parts.append(
        f"<p class='note'>Examples (where the word scores highest) are folded under each class: {view}. "
        f"{colours}; the featured word is outlined.</p>"
    )
    for cls, top in tops.items():
        parts.append(f"<h2 id='c-{_anchor(cls, '')}'>{_esc(cls)} · {summary.classes[cls]:,} examples</h2>")
        parts.append(_class_table(summary, top, statistic, verified))
        for k, row in enumerate(top.itertuples(index=False)):
            found = examples[cls].get(row.item, [])
            opened = " open" if k == 0 else ""  # the class's first word shows its examples
            effect = f" · effect {_num(float(row.effect))}" if verified else ""
            parts.append(
                f"<details id='{_anchor(cls, row.item)}'{opened}><summary><h3>{row.rank}. {_esc(row.item)}</h3>"
                f"<span class='meta'>{statistic} {float(getattr(row, statistic)):.3f} · in {row.count} examples"
                f"{effect} · {len(found)} shown</span></summary>"
            )
            parts.extend(_example(summary, r, row.item, level, not centred) for r in found)
            parts.append("</details>")
    parts.append("</body></html>")
    return "\n".join(parts)
