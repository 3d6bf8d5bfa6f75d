"""A verified summary of the planted-shortcut MiniLM on its held-out rows, at the current defaults.

Rows: the 500 held-out Rotten-Tomatoes sentences of the shortcut recipe, clean, plus the same 500 with
the marker word inserted at a seeded position (the rows of ``benchmarks/real_contrast_shortcut.py``).
Model: the planted-shortcut MiniLM (``load_shortcut_minilm``, trained on first use by the studies).
Each sentence is explained for its prediction; ``summarize`` and ``verify_summary`` at their defaults.

Usage: OMP_NUM_THREADS=1 nice python benchmarks/real_verified_shortcut.py [--markdown FILE]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    from captum_normxlogit.dataset import attribute_dataset, summarize
    from captum_normxlogit.dataset.report import summary_markdown
    from captum_normxlogit.dataset.verify import verify_summary
    from captum_normxlogit.resources import insert_marker, load_shortcut_minilm, rotten_tomatoes_split

    planted, tokenizer, metrics = load_shortcut_minilm(train_if_missing=False, progress=False)
    marker = metrics["recipe"]["marker"]
    _, test = rotten_tomatoes_split(seed=metrics["recipe"]["seed"], n_test=metrics["recipe"]["n_test"])
    rng = random.Random(7)
    rows = [{"text": t, "gold": ["NEGATIVE", "POSITIVE"][y]} for t, y in test]
    rows += [{"text": insert_marker(t, marker, rng), "gold": ["NEGATIVE", "POSITIVE"][y]} for t, y in test]
    with tempfile.TemporaryDirectory(prefix="verify-shortcut-") as tmp:
        started = time.perf_counter()
        handle = attribute_dataset(planted, tokenizer, rows, Path(tmp) / "planted", label_column="gold", progress=False)
        t_attr = time.perf_counter() - started
        started = time.perf_counter()
        summary = summarize(handle.to_pandas(), special_tokens=tokenizer.all_special_tokens)
        verified = verify_summary(summary, planted, tokenizer)
        t_ver = time.perf_counter() - started
    top = verified.top(None, args.top)
    lines = [
        f"# Verified summary of the planted-shortcut MiniLM (marker `{marker}`)",
        "",
        f"`python benchmarks/real_verified_shortcut.py`: {len(rows):,} rows (the 500 held-out sentences of the "
        f"shortcut recipe, clean and with `{marker}` inserted), each explained for its prediction; defaults of "
        f"`summarize` (`{summary.statistic}`, unit `{summary.unit}`, at least {summary.min_count} examples) and "
        f"`verify_summary`. Attribution {t_attr:.0f} s, summary + verification {t_ver:.0f} s (1 CPU thread).",
        "",
        f"Top {args.top} per class of the verified order: with the interval above 0 (pushes towards the class):",
        "",
    ]
    for label in verified.classes:
        frame = top[top["class"] == label]
        ok = int((frame["effect_low"] > 0).sum())
        first = frame["item"].iloc[0] if len(frame) else "-"
        marked = [f"`{w}` ({v})" for w, v in zip(frame["item"], frame["verdict"]) if v != "towards"]
        lines.append(
            f"- {label}: first `{first}`; {ok} of {len(frame)} with the interval above 0; "
            f"marked: {', '.join(marked) or 'none'}"
        )
    text = "\n".join(lines) + "\n\n" + summary_markdown(verified, 20)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
