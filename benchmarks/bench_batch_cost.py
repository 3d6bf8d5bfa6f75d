"""Cost of one NormXLogit batch against its shape: the per-batch overhead and the per-token cost by batch size.

Model: the fine-tuned all-MiniLM-L6-v2 sentiment classifier (``make prepare``).
For each padded width and example count, times ``NormXLogit.attribute`` on a
batch of real Rotten-Tomatoes token ids cut or padded to that width (the
content does not change the cost), ``--repeats`` times, interleaved; the
median is kept. Per width, a least-squares line ``seconds = overhead +
per_token * padded_tokens`` over the batches of up to 1,024 padded tokens
gives the fixed cost of a batch;
``overhead / per_token`` is that cost in padded tokens, the constant the
length-aware batching (``captum_normxlogit.dataset.token_budget_batches``) weighs
against padding. Seconds per padded token by batch size show whether large
batches pay (they need not on a CPU, where a big batch's activations leave the
cache).

First, the cuts of the 4,000 Rotten-Tomatoes sentences (shards of 1,024,
8,192 padded tokens) for several overheads: padded tokens, batches, the
dynamic programme's time per shard, and the modelled cost against the best
cut for the smallest and largest overhead this script measured;
``--cuts-only`` stops there.

Usage: nice python benchmarks/bench_batch_cost.py [--threads 1] [--repeats 3] [--cuts-only]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Dict, List, Tuple

import torch

WIDTHS = (16, 32, 64)
TOKENS = (64, 128, 256, 512, 1024, 2048, 4096, 8192)  # padded tokens per batch; count = tokens // width
LINEAR_UP_TO = 1024  # the line is fitted on batches up to this size, before cache effects bend it
SHARD, BUDGET = 1024, 8192  # attribute_dataset's defaults
OVERHEADS = (None, 0, 22, 32, 64, 95, 128)  # None: fewest batches, then least padding
MEASURED_OVERHEAD = (22, 95)  # the range this script's fit gave (benchmarks/results/bench_batch_cost_cpu.md)


def _cuts(tokenizer, texts) -> None:
    r"""Padded tokens and batches of the sentences by overhead, the programme's time, the modelled cost."""
    from captum_normxlogit.dataset import token_budget_batches

    lengths = [len(x) for x in tokenizer(texts)["input_ids"]]
    shards = [lengths[s : s + SHARD] for s in range(0, len(lengths), SHARD)]
    found = {}
    for overhead in OVERHEADS:
        start = time.perf_counter()
        cut = [token_budget_batches(shard, BUDGET, overhead) for shard in shards]
        seconds = (time.perf_counter() - start) / len(shards)
        padded = sum(len(b) * max(shard[i] for i in b) for shard, batches in zip(shards, cut) for b in batches)
        found[overhead] = (padded, sum(len(batches) for batches in cut), seconds)
    print(
        f"Cuts of the {len(lengths):,} Rotten-Tomatoes sentences ({sum(lengths):,} tokens), shards of {SHARD}, "
        f"at most {BUDGET} padded tokens per batch:\n"
    )
    print(
        "| overhead_tokens | padded tokens | batches | ms per shard | "
        + " | ".join(f"modelled cost vs best, overhead {o}" for o in MEASURED_OVERHEAD)
        + " |"
    )
    print("|---|---:|---:|---:|" + "---:|" * len(MEASURED_OVERHEAD))
    for overhead, (padded, batches, seconds) in found.items():
        rel = []
        for true in MEASURED_OVERHEAD:  # padded + overhead x batches, against the best of these cuts
            best = min(p + true * b for p, b, _ in found.values())
            rel.append(f"{(padded + true * batches) / best - 1:+.2%}")
        print(f"| {overhead} | {padded:,} | {batches} | {seconds * 1e3:.1f} | " + " | ".join(rel) + " |")
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument(
        "--cuts-only",
        action="store_true",
        help="only the cuts of the 4,000 sentences by overhead (no model run, seconds)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from captum_normxlogit import NormXLogit
    from captum_normxlogit.resources import load_sentiment_minilm, rotten_tomatoes_sentences

    model, tokenizer = load_sentiment_minilm(train_if_missing=False, progress=False)
    texts = [text for text, _ in rotten_tomatoes_sentences()]
    _cuts(tokenizer, texts)
    if args.cuts_only:
        return 0
    nx = NormXLogit(model)
    ids = tokenizer(texts, truncation=True, max_length=max(WIDTHS), padding="max_length", return_tensors="pt")[
        "input_ids"
    ]
    shapes = [(tokens // w, w) for w in WIDTHS for tokens in TOKENS if tokens // w >= 1]

    def one(count: int, width: int) -> float:
        x = ids[:count, :width].clone()
        mask = torch.ones_like(x)
        start = time.perf_counter()
        nx.attribute(x, additional_forward_args=(mask,)).tolist()
        return time.perf_counter() - start

    load_start = os.getloadavg()[0]
    one(8, 16)  # warm-up
    times: Dict[Tuple[int, int], List[float]] = {s: [] for s in shapes}
    for round_ in range(args.repeats):
        for shape in shapes:
            times[shape].append(one(*shape))
        print(f"round {round_ + 1} done", file=sys.stderr, flush=True)
    median = {s: statistics.median(v) for s, v in times.items()}

    print(
        f"MiniLM-L6 (fine-tuned), NormXLogit.attribute, torch {torch.__version__}, {torch.get_num_threads()} "
        f"threads; medians of {args.repeats} interleaved runs; 1-minute load average {load_start:.1f} at the "
        f"start, {os.getloadavg()[0]:.1f} at the end.\n"
    )
    print("| width | count | padded tokens | ms per batch | us per padded token |")
    print("|---:|---:|---:|---:|---:|")
    for count, width in shapes:
        t = median[(count, width)]
        print(f"| {width} | {count} | {count * width:,} | {t * 1e3:.1f} | {t / (count * width) * 1e6:.1f} |")
    print()
    for width in WIDTHS:
        pts = [(c * w, median[(c, w)]) for c, w in shapes if w == width and c * w <= LINEAR_UP_TO]
        mx = statistics.fmean(p for p, _ in pts)
        my = statistics.fmean(t for _, t in pts)
        slope = sum((p - mx) * (t - my) for p, t in pts) / sum((p - mx) ** 2 for p, _ in pts)
        overhead = my - slope * mx
        print(
            f"width {width}, batches of up to {LINEAR_UP_TO} padded tokens: seconds = {overhead * 1e3:.2f} ms + "
            f"{slope * 1e6:.1f} us x padded tokens "
            f"(overhead = {overhead / slope:.0f} padded tokens)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
