"""A real contrast: the planted-shortcut MiniLM against the clean one on the same rows (`compare_summaries`).

Rows: the 500 held-out Rotten-Tomatoes sentences of the shortcut recipe, clean, plus the same 500 with
the marker word inserted at a seeded position (as ``_experiments.dataset_summary.run_shortcut``).
Run a: the clean fine-tuned MiniLM; run b: the planted-shortcut MiniLM (``load_shortcut_minilm``,
trained on first use). Each sentence is explained for its prediction; the contrast is verified by
occlusion on each model.

Usage: OMP_NUM_THREADS=1 nice python benchmarks/real_contrast_shortcut.py [--markdown FILE]
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
    from captum_normxlogit.dataset import attribute_dataset, compare_summaries
    from captum_normxlogit.dataset.report import contrast_markdown
    from captum_normxlogit.resources import (
        insert_marker,
        load_sentiment_minilm,
        load_shortcut_minilm,
        rotten_tomatoes_split,
    )

    clean, tokenizer = load_sentiment_minilm(train_if_missing=False, progress=False)
    planted, planted_tok, metrics = load_shortcut_minilm(train_if_missing=False, progress=False)
    marker = metrics["recipe"]["marker"]
    _, test = rotten_tomatoes_split(seed=metrics["recipe"]["seed"], n_test=metrics["recipe"]["n_test"])
    rng = random.Random(7)
    rows = [{"text": t, "gold": ["NEGATIVE", "POSITIVE"][y]} for t, y in test]
    rows += [{"text": insert_marker(t, marker, rng), "gold": ["NEGATIVE", "POSITIVE"][y]} for t, y in test]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="verify-contrast-") as tmp:
        a = attribute_dataset(clean, tokenizer, rows, Path(tmp) / "clean", label_column="gold", progress=False)
        b = attribute_dataset(planted, planted_tok, rows, Path(tmp) / "planted", label_column="gold", progress=False)
        sa, sb = a.summary(), b.summary()
        contrast = compare_summaries(sa, sb, model_a=clean, model_b=planted, tokenizer=tokenizer, n=args.top)
    seconds = time.perf_counter() - started
    text = (
        f"# The planted-shortcut MiniLM (b) against the clean MiniLM (a)\n\n"
        f"`python benchmarks/real_contrast_shortcut.py`: {len(rows):,} rows (the 500 held-out sentences of the "
        f"shortcut recipe, clean and with `{marker}` inserted), each explained for its model's prediction; "
        f"defaults of `summarize` (`{sa.statistic}`, at least {sa.min_count} examples); {seconds:.0f} s in all "
        f"(two attribution passes, two summaries, the verification).\n\n" + contrast_markdown(contrast, args.top)
    )
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
