"""verify_summary with the clean P(class) measured against read from the rows (``rows_weights=``), same summary.

Reads the verified summary that ``benchmarks/bench_verify.py --report-dir DIR`` pickles
(``DIR/rt_verified.pkl``: its rows, the 4,000 Rotten-Tomatoes sentences) and runs
``verify_summary`` on it ``--repeats`` times each way, interleaved, on the fine-tuned MiniLM that
wrote the rows: once measuring every clean P(class), once passing the model's own fingerprint as
``rows_weights`` so the stored ``prob`` is used. Prints the medians, their ratio and the largest
difference between the two runs' effects.

Usage: OMP_NUM_THREADS=1 nice python benchmarks/bench_verify_clean.py DIR/rt_verified.pkl [--repeats 1]
       [--markdown FILE]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pickle")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    from captum_normxlogit.dataset import verify as V
    from captum_normxlogit.dataset.verify import verify_summary, weights_fingerprint
    from captum_normxlogit.resources import load_sentiment_minilm

    with open(args.pickle, "rb") as fh:
        summary = pickle.load(fh)
    model, tokenizer = load_sentiment_minilm(train_if_missing=False, progress=False)
    times: dict = {"measured": [], "stored": []}
    passes = {"measured": 0, "stored": 0}  # sequences run through the model (the load-free measure)
    real = V.class_probabilities
    current = ["measured"]

    def counted(model_, rows, *a, **k):
        passes[current[0]] += len(rows)
        return real(model_, rows, *a, **k)

    V.class_probabilities = counted  # type: ignore[assignment]  # count what verify_summary runs
    runs = {}
    for _ in range(args.repeats):
        for name, weights in (("measured", None), ("stored", weights_fingerprint(model))):
            current[0] = name
            started = time.perf_counter()
            runs[name] = verify_summary(summary, model, tokenizer, rows_weights=weights)
            times[name].append(time.perf_counter() - started)
            print(name, round(times[name][-1], 1), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    a, b = runs["measured"].effects, runs["stored"].effects
    diff = float(np.max(np.abs(a["effect"].to_numpy() - b["effect"].to_numpy())))
    rows = int(a["n"].sum())
    text = (
        "\n".join(
            [
                "# verify_summary: clean P(class) measured or read from the rows",
                "",
                f"`{' '.join(['python', 'benchmarks/bench_verify_clean.py'] + sys.argv[1:])}`, torch threads "
                f"{torch.get_num_threads()}, {args.repeats} repeat(s) each, interleaved, medians; "
                f"{summary.n_rows:,} rows, {rows:,} occluded examples measured.",
                "",
                "| clean P(class) | seconds | × measured | sequences through the model | × measured |",
                "|---|---:|---:|---:|---:|",
                f"| measured (a clean forward pass per example) | {med['measured']:.1f} | 1.00 | "
                f"{passes['measured'] // args.repeats:,} | 1.00 |",
                f"| read from the rows' `prob` (`rows_weights=`) | {med['stored']:.1f} | "
                f"{med['stored'] / med['measured']:.2f} | {passes['stored'] // args.repeats:,} | "
                f"{passes['stored'] / passes['measured']:.2f} |",
                "",
                f"Largest difference between the two runs' effects: {diff:.1e}.",
            ]
        )
        + "\n"
    )
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
