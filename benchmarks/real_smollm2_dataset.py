"""SmolLM2-135M over Rotten-Tomatoes sentences with ``normxlogit attribute-dataset``: next word, two ways.

Each sentence is cut before its last word (trailing punctuation dropped): the
prompt is everything before it, the word (with its leading space) is the
continuation. Two runs of the CLI on the same ``.jsonl``:

1. next token (no ``--target``): NormXLogit for the model's own next token;
2. teacher-forced (``--target column:next``): LLMNormXLogit's ``(n_out, n_in)``
   matrix and the probability of the real word, from one pass per batch.

Reports throughput, how often the model's next token is the real word's first
token, the most frequent predictions, and the prompt tokens with the highest
mean NormXLogit score in run 1 (at least 30 occurrences). Weights: the GGUF
Q4_1 release dequantised to float32 (see ``captum_normxlogit.resources``), so
the numbers describe that model, not the original bf16 one.

Usage: OMP_NUM_THREADS=1 nice python benchmarks/real_smollm2_dataset.py [--examples 2000]
           [--markdown benchmarks/results/dataset_smollm2_cpu.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def _examples(limit: int):
    from captum_normxlogit.resources import rotten_tomatoes_sentences

    rows = []
    for text, _ in rotten_tomatoes_sentences():
        words = text.split()
        while words and not any(ch.isalpha() for ch in words[-1]):
            words.pop()
        if len(words) < 5:
            continue
        rows.append({"text": " ".join(words[:-1]), "next": " " + words[-1]})
        if len(rows) == limit:
            break
    return rows


def _cli(output: Path, *args) -> float:
    r"""Run the command; returns the run's own wall time from the manifest (model loading excluded)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "captum_normxlogit.cli",
            "attribute-dataset",
            *args,
            "--output",
            str(output),
            "--no-progress",
        ],
        check=True,
        env=env,
    )
    return json.loads((output / ".manifest.json").read_text())["run"]["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    from captum_normxlogit.resources import load_smollm2, smollm2_dir

    if not (smollm2_dir() / "config.json").is_file():
        load_smollm2()  # converts the GGUF into the cache once
    model_dir = str(smollm2_dir())
    work = Path(tempfile.mkdtemp(prefix="smollm2-dataset-"))
    data = work / "rt_next_word.jsonl"
    rows = _examples(args.examples)
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    t_next = _cli(work / "next", str(data), "--model", model_dir, "--max-tokens-per-batch", "4096")
    t_forced = _cli(
        work / "forced", str(data), "--model", model_dir, "--target", "column:next", "--max-tokens-per-batch", "4096"
    )
    nxt, forced = pd.read_parquet(work / "next"), pd.read_parquet(work / "forced")
    n, tokens = len(nxt), int(nxt.input_ids.map(len).sum())
    hit = float(np.mean([p == o[0] for p, o in zip(nxt.predicted, forced.output_ids)]))
    first_prob = forced.output_probs.map(lambda p: float(p[0]))
    word_prob = forced.prob
    by_token = defaultdict(list)
    for toks, scores in zip(nxt.tokens, nxt.scores):
        for tok, score in zip(toks, scores):
            by_token[tok].append(float(score))
    top = sorted(((np.mean(v), len(v), t) for t, v in by_token.items() if len(v) >= 30), reverse=True)[:10]
    predicted = nxt.predicted_label.value_counts().head(10)
    lines = [
        f"SmolLM2-135M-Instruct (GGUF Q4_1 dequantised to float32), {n:,} Rotten-Tomatoes sentences cut before their "
        f"last word ({tokens:,} prompt tokens); CPU, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, run "
        "under `nice` on a 2-core machine shared with other jobs; "
        "wall time of each run as its manifest records it (model loading excluded), one run each.",
        "",
        "| run | seconds | examples/s | prompt tokens/s |",
        "|---|---:|---:|---:|",
        f"| next token (model's prediction) | {t_next:.1f} | {n / t_next:.1f} | {tokens / t_next:,.0f} |",
        f"| teacher-forced real last word (`--target column:next`) | {t_forced:.1f} | {n / t_forced:.1f} | "
        f"{tokens / t_forced:,.0f} |",
        "",
        f"model's next token = the real word's first token: {hit:.1%}; median P(first token of the real word) "
        f"{first_prob.median():.3f}; median P(whole word) {word_prob.median():.4f}; multi-token words: "
        f"{(forced.output_ids.map(len) > 1).mean():.1%}",
        "",
        "| most frequent predicted next tokens | count |",
        "|---|---:|",
        *[f"| {label!r} | {count} |" for label, count in predicted.items()],
        "",
        "| prompt token (>= 30 occurrences) | mean NormXLogit score (next-token run) | occurrences |",
        "|---|---:|---:|",
        *[f"| {t!r} | {m:.2f} | {c} |" for m, c, t in top],
    ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
