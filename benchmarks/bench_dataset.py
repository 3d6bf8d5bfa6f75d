"""attribute_dataset's throughput against a bare forward pass, a naive loop and IG; streaming memory; 2 ranks vs 1.

Model: the fine-tuned all-MiniLM-L6-v2 sentiment classifier (``make prepare``).
Data: the 4,000 Rotten-Tomatoes sentences, in file order.

* (a) bare forward: ``model(...)`` under ``no_grad`` over the very batches
  ``attribute_dataset`` builds (length-sorted within each 1,024-example shard,
  at most 8,192 padded tokens per batch, cut as on a CPU), tokenized and padded beforehand: the
  model's own cost and nothing else;
* (b) ``attribute_dataset`` end to end: tokenization, checks, NormXLogit,
  Parquet shards and manifest;
* (c) a naive loop: NormXLogit over fixed-count batches in file order, each
  tokenized and padded to its longest (nothing written);
* (d) IntegratedGradients (50 steps, zero baseline on the input embeddings,
  the package's ``build_method("ig")``) measured on the first 100 sentences and
  extrapolated linearly to 4,000 (said so in the table).

(a), (b) and (c) run ``--repeats`` times, interleaved round by round (load on
a shared machine hits each alike); the table gives medians. ``--parts rss``:
peak RSS and time per 100k rows of streaming runs of 4,000, 40,000 and
400,000 examples in fresh processes, through the CLI as shipped and from
Python with defaults (``benchmarks/_bench_rss.py`` says what is measured; by
default a small random BERT with MiniLM's tokenizer, ``--rss-model minilm``
for the real one). 2 processes (``torchrun --nproc_per_node 2``, gloo, 1
thread each, torchrun's default) against 1 process (all threads) time (b) on
the 4,000 sentences in fresh processes.

Usage: nice python benchmarks/bench_dataset.py [--repeats 3] [--parts rss --rss-repeats 3 --rss-ablate]
       [--markdown FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import _bench_rss  # benchmarks/ is on sys.path when run as a script
import torch

HERE = Path(__file__).resolve().parent
SHARD, BUDGET, FIXED_BATCH, IG_EXAMPLES, IG_STEPS = 1024, 8192, 32, 100, 50


def _model():
    from captum_normxlogit.resources import load_sentiment_minilm, rotten_tomatoes_sentences

    model, tokenizer = load_sentiment_minilm(train_if_missing=False, progress=False)
    return model, tokenizer, [text for text, _ in rotten_tomatoes_sentences()]


def _length_aware_batches(tokenizer, texts: List[str]):
    r"""The batches attribute_dataset runs, padded ahead of time (same sort window, same budget)."""
    from captum_normxlogit.dataset import CPU_BATCH_OVERHEAD_TOKENS, token_budget_batches

    batches = []
    for start in range(0, len(texts), SHARD):
        ids = tokenizer(texts[start : start + SHARD])["input_ids"]
        for batch in token_budget_batches([len(x) for x in ids], BUDGET, CPU_BATCH_OVERHEAD_TOKENS):
            width = max(len(ids[i]) for i in batch)
            padded = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros_like(padded)
            for row, i in enumerate(batch):
                padded[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            batches.append((padded, mask))
    return batches


def _write_jsonl(path: Path, texts: List[str], times: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(times):
            for text in texts:
                handle.write(json.dumps({"text": text}) + "\n")


def _time_child(data: str, out: str) -> None:
    import torch.distributed as dist

    from captum_normxlogit.dataset import attribute_dataset

    model, tokenizer, texts = _model()
    attribute_dataset(model, tokenizer, texts[:64], out + "-warm", progress=False)  # joins torchrun's group
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    start = time.perf_counter()
    res = attribute_dataset(model, tokenizer, data, out, progress=False)
    elapsed = time.perf_counter() - start
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            json.dumps(
                {
                    "seconds": elapsed,
                    "rows": res.counts()["rows"],
                    "threads": torch.get_num_threads(),
                    "world_size": int(os.environ.get("WORLD_SIZE", "1")),
                }
            )
        )


def _measure_rss(args: argparse.Namespace, work: Path) -> List[str]:
    r"""The RSS part with the command line's --rss-* options (one place that reads them)."""
    return _bench_rss.measure(
        work,
        args.rss_model,
        [int(x) for x in args.rss_sizes.split(",")],
        args.rss_repeats,
        args.rss_cases.split(","),
        [c for c in args.rss_ablate.split(",") if c],
        args.rss_jobs,
        args.rss_largest_repeats,
    )


def _child(cmd: List[str], env: Dict[str, str]) -> dict:
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _children_at_once(jobs: Dict[str, tuple]) -> Dict[str, dict]:
    r"""Run ``{key: (cmd, env)}`` concurrently; each one's last stdout line parsed as JSON."""
    procs = {
        key: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for key, (cmd, env) in jobs.items()
    }
    results = {}
    for key, proc in procs.items():
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, jobs[key][0], out, err)
        results[key] = json.loads(out.strip().splitlines()[-1])
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument(
        "--parts",
        default="time,rss,ranks",
        help="comma-separated: time (a-d), rss (peak memory), ranks (2 vs 1) (default: %(default)s)",
    )
    parser.add_argument(
        "--rss-model",
        choices=("tiny", "minilm"),
        default="tiny",
        help="model of the memory runs (default: %(default)s; see benchmarks/_bench_rss.py)",
    )
    parser.add_argument("--rss-sizes", default="4000,40000,400000", help="rows per memory run (default: %(default)s)")
    parser.add_argument("--rss-cases", default="cli,python", help="cli, python (default: %(default)s)")
    parser.add_argument(
        "--rss-repeats",
        type=int,
        default=3,
        help="fresh processes per memory case and size (medians reported) (default: %(default)s)",
    )
    parser.add_argument(
        "--rss-largest-repeats",
        type=int,
        default=0,
        help="fresh processes at the largest size (default: --rss-repeats)",
    )
    parser.add_argument(
        "--rss-ablate",
        nargs="?",
        const=",".join(_bench_rss.ABLATIONS),
        default="",
        help="also these cases (default: all of %(const)s), at the two smallest sizes",
    )
    parser.add_argument("--rss-jobs", type=int, default=3, help="memory processes at a time (default: %(default)s)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of the timed runs (default: torch's; 1 is steadier on a shared machine)",
    )
    parser.add_argument("--rss-child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--time-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        _bench_rss.child(*args.rss_child)
        return 0
    if set(args.parts.split(",")) == {"rss"}:  # no need for the timing part's model and batches
        work = Path(tempfile.mkdtemp(prefix="bench-dataset-rss-"))
        try:
            lines = _measure_rss(args, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        text = "\n".join(lines)
        print("\n" + text)
        if args.markdown:
            Path(args.markdown).write_text(text + "\n", encoding="utf-8")
        return 0
    if args.time_child:
        _time_child(*args.time_child)
        return 0

    from captum_normxlogit import NormXLogit
    from captum_normxlogit.dataset import attribute_dataset
    from captum_normxlogit.methods import build_method

    if args.threads:
        torch.set_num_threads(args.threads)

    load_start = os.getloadavg()[1]
    model, tokenizer, texts = _model()
    n = len(texts)
    tokens = sum(len(ids) for ids in tokenizer(texts)["input_ids"])
    batches = _length_aware_batches(tokenizer, texts)
    padded_sorted = sum(ids.numel() for ids, _ in batches)
    nx = NormXLogit(model)
    work = Path(tempfile.mkdtemp(prefix="bench-dataset-"))

    def bare_forward(subset=None):
        with torch.no_grad():
            for ids, mask in batches[:subset]:
                model(input_ids=ids, attention_mask=mask)

    end_to_end_runs = itertools.count(1)  # each run writes a fresh folder

    def end_to_end(subset=None):
        folder = work / f"b{next(end_to_end_runs)}"
        attribute_dataset(model, tokenizer, texts[:subset], folder, progress=False)
        shutil.rmtree(folder)

    padded_fixed = [0]

    def fixed_batches(subset=None):
        padded_fixed[0] = 0
        for start in range(0, len(texts[:subset]), FIXED_BATCH):
            enc = tokenizer(texts[start : start + FIXED_BATCH], padding=True, return_tensors="pt")
            padded_fixed[0] += enc["input_ids"].numel()
            nx.attribute(enc["input_ids"], additional_forward_args=(enc["attention_mask"],)).tolist()

    runs = {"a": bare_forward, "b": end_to_end, "c": fixed_batches}
    parts = set(args.parts.split(","))
    if "time" not in parts:
        runs = {}
    for key, fn in runs.items():  # warm-up: lazy initialisation and first-call allocations
        fn(2 if key == "a" else 256)
    times: Dict[str, List[float]] = {k: [] for k in runs}
    for round_ in range(args.repeats):
        for key, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
        print(f"round {round_ + 1} done", file=sys.stderr, flush=True)
    median = {k: statistics.median(v) for k, v in times.items()}

    ig_measured = None
    if "time" in parts:
        ig = build_method("ig", nx, ig_steps=IG_STEPS, internal_batch_size=10 * IG_STEPS, reduction="sum")
        start = time.perf_counter()
        for first in range(0, IG_EXAMPLES, 10):
            enc = tokenizer(texts[first : first + 10], padding=True, return_tensors="pt")
            with torch.no_grad():
                target = model(**enc).logits.argmax(-1)
            ig(enc["input_ids"], enc["attention_mask"], target)
        ig_measured = time.perf_counter() - start
        median["d"] = ig_measured * n / IG_EXAMPLES
        print("IG done", file=sys.stderr, flush=True)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    data4 = work / "rt4k.jsonl"
    _write_jsonl(data4, texts, 1)
    one, one_1t, two = None, None, None
    rss = _measure_rss(args, work) if "rss" in parts else []
    if "ranks" in parts:
        one = _child([sys.executable, __file__, "--time-child", str(data4), str(work / "one")], env)
        one_1t = _child(
            [sys.executable, __file__, "--time-child", str(data4), str(work / "one1")], {**env, "OMP_NUM_THREADS": "1"}
        )
        two = _child(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node",
                "2",
                __file__,
                "--time-child",
                str(data4),
                str(work / "two"),
            ],
            {**env, "OMP_NUM_THREADS": "1"},
        )
    shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()[1]
    lines = [
        f"MiniLM-L6 (fine-tuned), {n:,} Rotten-Tomatoes sentences ({tokens:,} tokens), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; shard {SHARD}, at most {BUDGET} padded tokens per batch; "
        "run under `nice` "
        f"on a 2-core machine shared with other jobs (5-minute load average {load_start:.1f} at the start, "
        f"{load:.1f} at the end).",
        "",
    ]
    if "time" in parts:
        rows = [
            ("a", "bare forward (no_grad), same length-aware batches, pre-tokenized"),
            ("b", "attribute_dataset end to end (tokenize, NormXLogit, Parquet)"),
            ("c", f"NormXLogit, fixed batches of {FIXED_BATCH} in file order (tokenize + pad per batch)"),
            (
                "d",
                f"IntegratedGradients {IG_STEPS} steps: {IG_EXAMPLES} examples measured "
                f"({ig_measured:.1f} s), extrapolated x{n // IG_EXAMPLES}",
            ),
        ]
        lines += [
            f"Medians of {args.repeats} interleaved runs; padded tokens: {padded_sorted:,} length-aware "
            f"({len(batches)} batches) vs {padded_fixed[0]:,} fixed-count ({-(-n // FIXED_BATCH)} batches).",
            "",
            "| run | seconds | examples/s | tokens/s | throughput / (a) |",
            "|---|---:|---:|---:|---:|",
        ]
        for key, label in rows:
            t = median[key]
            lines.append(f"| ({key}) {label} | {t:.2f} | {n / t:,.0f} | {tokens / t:,.0f} | {median['a'] / t:.3f}x |")
        lines += [
            "",
            f"(b) / (a) throughput: {median['a'] / median['b']:.3f}x (target >= 0.90)",
            f"(b) / (c) throughput: {median['c'] / median['b']:.2f}x (target >= 1.5)",
            f"IG extrapolated / (b) time: {median['d'] / median['b']:.0f}x (target >= 100)",
        ]
    lines += [""] + rss if rss else []
    if one is not None and one_1t is not None and two is not None:  # all three ran, or none
        lines.append(
            f"1 process ({one['threads']} threads): {one['seconds']:.2f} s; 2 processes (torchrun, gloo, "
            f"{two['threads']} thread each): {two['seconds']:.2f} s; speed-up "
            f"{one['seconds'] / two['seconds']:.2f}x; 1 process with 1 thread: {one_1t['seconds']:.2f} s, "
            f"2 processes {one_1t['seconds'] / two['seconds']:.2f}x faster (fresh processes, one run each, "
            "model load excluded)"
        )
    text = "\n".join(lines)
    print("\n" + text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
