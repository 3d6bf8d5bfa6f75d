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
a shared machine hits each alike); the table gives medians. Peak RSS of (b)
streaming a ``.jsonl`` file of 4,000 and of 40,000 examples (the 4,000
repeated) is measured in fresh processes (peak above the RSS just before
the call, after a small warm-up run), with glibc's defaults and with its mmap
threshold fixed (``MALLOC_MMAP_THRESHOLD_``), ``--rss-repeats`` processes per
case (medians; the range when more than one). The memory children run at the
same time: one process's peak RSS does not depend on the others' (the machine
must not swap), only their time does. 2 processes (``torchrun
--nproc_per_node 2``, gloo, 1 thread each, torchrun's default) against 1
process (all threads) time (b) on the 4,000 sentences in fresh processes.

Usage: nice python benchmarks/bench_dataset.py [--repeats 3] [--rss-repeats 3]
           [--markdown benchmarks/results/bench_dataset_cpu.md]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from captum_normxlogit.utils import peak_above, reset_peak

HERE = Path(__file__).resolve().parent
SHARD, BUDGET, FIXED_BATCH, IG_EXAMPLES, IG_STEPS = 1024, 8192, 32, 100, 50
MMAP_THRESHOLD = 128 * 1024  # glibc's default starting value, kept fixed
RSS_CASES = {"all": ("", "-fixed", "-system"), "defaults": ("",), "fixed": ("-fixed",), "system": ("-system",)}


def _model():
    from captum_normxlogit.resources import load_sentiment_minilm, rotten_tomatoes_sentences

    model, tokenizer = load_sentiment_minilm(train_if_missing=False, progress=False)
    return model, tokenizer, [text for text, _ in rotten_tomatoes_sentences()]


def _length_aware_batches(tokenizer, texts: List[str]):
    r"""The batches attribute_dataset runs, padded ahead of time (same sort window, same budget)."""
    from captum_normxlogit.dataset import CPU_BATCH_OVERHEAD_TOKENS, token_budget_batches

    batches = []
    for start in range(0, len(texts), SHARD):
        ids = tokenizer(texts[start:start + SHARD])["input_ids"]
        for batch in token_budget_batches([len(x) for x in ids], BUDGET, CPU_BATCH_OVERHEAD_TOKENS):
            width = max(len(ids[i]) for i in batch)
            padded = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros_like(padded)
            for row, i in enumerate(batch):
                padded[row, :len(ids[i])] = torch.tensor(ids[i])
                mask[row, :len(ids[i])] = 1
            batches.append((padded, mask))
    return batches


def _write_jsonl(path: Path, texts: List[str], times: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(times):
            for text in texts:
                handle.write(json.dumps({"text": text}) + "\n")


def _rss_child(data: str, out: str) -> None:
    from captum_normxlogit.dataset import attribute_dataset

    model, tokenizer, texts = _model()
    warm = Path(out + "-warm")
    _write_jsonl(Path(out + "-warm.jsonl"), texts[:64], 1)
    attribute_dataset(model, tokenizer, out + "-warm.jsonl", warm, progress=False)  # library initialisation
    before = reset_peak()
    attribute_dataset(model, tokenizer, data, out, progress=False)
    print(json.dumps({"delta_mib": peak_above(before)}))


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
        print(json.dumps({"seconds": elapsed, "rows": res.counts()["rows"], "threads": torch.get_num_threads(),
                          "world_size": int(os.environ.get("WORLD_SIZE", "1"))}))


def _child(cmd: List[str], env: Dict[str, str]) -> dict:
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _children_at_once(jobs: Dict[Any, tuple]) -> Dict[Any, dict]:
    r"""Run ``{key: (cmd, env)}`` concurrently; each one's last stdout line parsed as JSON."""
    procs = {key: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for key, (cmd, env) in jobs.items()}
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
    parser.add_argument("--parts", default="time,rss,ranks",
                        help="comma-separated: time (a-d), rss (peak memory), ranks (2 vs 1) (default: %(default)s)")
    parser.add_argument("--rss-cases", choices=tuple(RSS_CASES), default="all",
                        help="allocator settings of the memory children: glibc defaults, the mmap threshold fixed, "
                             "and that plus ARROW_DEFAULT_MEMORY_POOL=system (default: all)")
    parser.add_argument("--rss-repeats", type=int, default=1,
                        help="fresh processes per memory case (medians reported) (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the timed runs (default: torch's; 1 is steadier on a shared machine)")
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--time-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        _rss_child(*args.rss_child)
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

    rounds = [0]

    def end_to_end(subset=None):
        rounds[0] += 1
        attribute_dataset(model, tokenizer, texts[:subset], work / f"b{rounds[0]}", progress=False)
        shutil.rmtree(work / f"b{rounds[0]}")

    padded_fixed = [0]

    def fixed_batches(subset=None):
        padded_fixed[0] = 0
        for start in range(0, len(texts[:subset]), FIXED_BATCH):
            enc = tokenizer(texts[start:start + FIXED_BATCH], padding=True, return_tensors="pt")
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
            enc = tokenizer(texts[first:first + 10], padding=True, return_tensors="pt")
            with torch.no_grad():
                target = model(**enc).logits.argmax(-1)
            ig(enc["input_ids"], enc["attention_mask"], target)
        ig_measured = time.perf_counter() - start
        median["d"] = ig_measured * n / IG_EXAMPLES
        print("IG done", file=sys.stderr, flush=True)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    data4, data40 = work / "rt4k.jsonl", work / "rt40k.jsonl"
    _write_jsonl(data4, texts, 1)
    _write_jsonl(data40, texts, 10)
    rss: Dict[str, List[float]] = {}
    one: Optional[dict] = None
    one_1t: Optional[dict] = None
    two: Optional[dict] = None
    if "rss" in parts:
        # Also with glibc's mmap threshold fixed (its default rises after each freed large block, so later
        # activation buffers come from a fragmenting heap): tells allocator growth from growth of our own.
        fixed = {**env, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}
        # and with Arrow on the system allocator too (the CLI's default): mimalloc keeps freed shard buffers
        system = {**fixed, "ARROW_DEFAULT_MEMORY_POOL": "system"}
        cases = {tag: e for tag, e in (("", env), ("-fixed", fixed), ("-system", system))
                 if tag in RSS_CASES[args.rss_cases]}
        jobs = {(f"{label}{tag}", rep): ([sys.executable, __file__, "--rss-child", str(path),
                                          str(work / f"rss{label}{tag}-{rep}")], child_env)
                for tag, child_env in cases.items() for label, path in (("4k", data4), ("40k", data40))
                for rep in range(args.rss_repeats)}
        for (case, _), result in _children_at_once(jobs).items():
            rss.setdefault(case, []).append(result["delta_mib"])
        print("RSS done", file=sys.stderr, flush=True)
    if "ranks" in parts:
        one = _child([sys.executable, __file__, "--time-child", str(data4), str(work / "one")], env)
        one_1t = _child([sys.executable, __file__, "--time-child", str(data4), str(work / "one1")],
                        {**env, "OMP_NUM_THREADS": "1"})
        two = _child([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                      __file__, "--time-child", str(data4), str(work / "two")], {**env, "OMP_NUM_THREADS": "1"})
    shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()[1]
    lines = [f"MiniLM-L6 (fine-tuned), {n:,} Rotten-Tomatoes sentences ({tokens:,} tokens), torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads; shard {SHARD}, at most {BUDGET} padded tokens per batch; "
             f"run under `nice` on a 2-core machine shared with other jobs (5-minute load average "
             f"{load_start:.1f} at the start, {load:.1f} at the end).", ""]
    if "time" in parts:
        rows = [("a", "bare forward (no_grad), same length-aware batches, pre-tokenized"),
                ("b", "attribute_dataset end to end (tokenize, NormXLogit, Parquet)"),
                ("c", f"NormXLogit, fixed batches of {FIXED_BATCH} in file order (tokenize + pad per batch)"),
                ("d", f"IntegratedGradients {IG_STEPS} steps: {IG_EXAMPLES} examples measured "
                      f"({ig_measured:.1f} s), extrapolated x{n // IG_EXAMPLES}")]
        lines += [f"Medians of {args.repeats} interleaved runs; padded tokens: {padded_sorted:,} length-aware "
                  f"({len(batches)} batches) vs {padded_fixed[0]:,} fixed-count ({-(-n // FIXED_BATCH)} batches).", "",
                  "| run | seconds | examples/s | tokens/s | throughput / (a) |", "|---|---:|---:|---:|---:|"]
        for key, label in rows:
            t = median[key]
            lines.append(f"| ({key}) {label} | {t:.2f} | {n / t:,.0f} | {tokens / t:,.0f} | {median['a'] / t:.3f}x |")
        lines += ["", f"(b) / (a) throughput: {median['a'] / median['b']:.3f}x (target >= 0.90)",
                  f"(b) / (c) throughput: {median['c'] / median['b']:.2f}x (target >= 1.5)",
                  f"IG extrapolated / (b) time: {median['d'] / median['b']:.0f}x (target >= 100)"]
    if rss:
        for tag, how in (("", "glibc defaults"), ("-fixed", f"MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}"),
                         ("-system", f"MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD} and ARROW_DEFAULT_MEMORY_POOL=system")):
            if f"4k{tag}" not in rss:
                continue
            small, large = statistics.median(rss[f"4k{tag}"]), statistics.median(rss[f"40k{tag}"])
            spread = "" if args.rss_repeats == 1 else (
                f" (range {min(rss[f'4k{tag}']):.0f}-{max(rss[f'4k{tag}']):.0f} and "
                f"{min(rss[f'40k{tag}']):.0f}-{max(rss[f'40k{tag}']):.0f} MiB)")
            what = "fresh process" if args.rss_repeats == 1 else f"median of {args.rss_repeats} fresh processes"
            lines.append(f"peak RSS above the start of the call, streaming a .jsonl ({what}, {how}): "
                         f"4,000 examples {small:.0f} MiB, 40,000 examples {large:.0f} MiB{spread}: ratio "
                         f"{large / max(small, 1e-9):.2f} (target <= 1.10)")
    if one is not None and one_1t is not None and two is not None:
        lines.append(f"1 process ({one['threads']} threads): {one['seconds']:.2f} s; 2 processes (torchrun, gloo, "
                     f"{two['threads']} thread each): {two['seconds']:.2f} s; speed-up "
                     f"{one['seconds'] / two['seconds']:.2f}x; 1 process with 1 thread: {one_1t['seconds']:.2f} s, "
                     f"2 processes {one_1t['seconds'] / two['seconds']:.2f}x faster (fresh processes, one run each, "
                     "model load excluded)")
    text = "\n".join(lines)
    print("\n" + text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
