"""``bench_dataset.py --parts rss``: peak RSS and time per 100k rows of long streaming runs, in fresh processes.

Model (``--rss-model``): ``tiny`` (default) is a randomly initialised BERT
classifier (2 layers, hidden 64, 2 heads, seed 0) with all-MiniLM-L6-v2's
tokenizer and vocabulary, so that 400,000 rows take minutes on one core; its
activations are smaller than MiniLM's, the reading, tokenizing, row building
and Parquet writing are the same. ``minilm`` is the fine-tuned MiniLM
(``make prepare``). Data: the 4,000 Rotten-Tomatoes sentences repeated to 4,000,
40,000 and 400,000 lines of a ``.jsonl`` (so at most 125 distinct shards of
1,024 rows, and no shape the 4,000 do not have).

Cases, each a fresh process per size and repeat, run ``--rss-jobs`` at a time:

* ``cli``: ``captum_normxlogit.cli.main`` (what the ``normxlogit`` script calls)
  with ``attribute-dataset --model DIR``: once on 64 rows (library
  initialisation), then the peak RSS above the start of the second call (its
  model load included) on the data, no ``MALLOC_*``/``ARROW_*`` variables set;
* ``python``: ``attribute_dataset(model, tokenizer, path, out)`` with its
  defaults after a 64-row warm-up, peak above the start of the call;
* ``python-old``: the same without the package's allocator settings (its
  ``steady_memory`` replaced by a no-op: the previous release), and
  ``python-no-X``: with all but one (``mallopt``, ``arrow``, ``mkldnn``), for
  each setting's effect (4,000 and 40,000 only).

Time per 100k rows: each call's seconds / rows, and, within each 400,000-row
run, from the shards' modification times (rows 0-4k, 4k-40k, 40k-400k of the
same process): a folder that slows down as it grows shows there.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from captum_normxlogit.utils import peak_above, reset_peak

HERE = Path(__file__).resolve().parent
ABLATIONS = ("python-old", "python-no-mallopt", "python-no-arrow", "python-no-mkldnn")


def make_tiny_model(folder: Path) -> Path:
    r"""The random 2-layer BERT with MiniLM's tokenizer, saved for the CLI's ``--model``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from captum_normxlogit.resources import minilm_dir

    config = BertConfig.from_pretrained(
        minilm_dir(),
        num_hidden_layers=2,
        hidden_size=64,
        num_attention_heads=2,
        intermediate_size=128,
        num_labels=2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(folder)
    return folder


def write_data(path: Path, texts: Sequence[str], rows: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(rows):
            handle.write(json.dumps({"text": texts[i % len(texts)]}) + "\n")


def _shard_times(out: Path, start: float) -> List[float]:
    return [p.stat().st_mtime - start for p in sorted(out.glob("part-*.parquet"))]


def child(case: str, model_dir: str, data: str, out: str, warm: str) -> None:
    r"""One measurement in this (fresh) process; prints one JSON line."""
    if case == "cli":
        from captum_normxlogit.cli import main

        def call(path: str, folder: str) -> None:
            code = main(["attribute-dataset", "--model", model_dir, "--output", folder, "--no-progress", path])
            if code:
                raise SystemExit(code)
    else:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from captum_normxlogit.dataset import api, attribute_dataset

        if case == "python-old":
            api.steady_memory = lambda cpu_float32: contextlib.nullcontext()  # type: ignore[assignment, return-value]  # a no-op stand-in
        elif case.startswith("python-no-"):
            _without(case[len("python-no-") :])
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        tokenizer = AutoTokenizer.from_pretrained(model_dir)

        def call(path: str, folder: str) -> None:
            attribute_dataset(model, tokenizer, path, folder, progress=False)

    call(warm, out + "-warm")
    before = reset_peak()
    wall = time.time()
    start = time.perf_counter()
    call(data, out)
    seconds = time.perf_counter() - start
    delta = peak_above(before)
    rows = sum(1 for line in open(data, "rb") if line.strip())
    print(
        json.dumps({"delta_mib": delta, "seconds": seconds, "rows": rows, "shard_times": _shard_times(Path(out), wall)})
    )


def _without(setting: str) -> None:
    r"""Switch one of steady_memory's settings off, in this process."""
    from captum_normxlogit._utils import memory

    if setting == "mallopt":
        memory.fix_glibc_mmap_threshold = lambda: False
    elif setting == "arrow":
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "mimalloc"  # pyarrow's default; steady_memory leaves it
    elif setting == "mkldnn":
        original = memory.steady_memory
        memory_api = sys.modules["captum_normxlogit.dataset.api"]
        memory_api.steady_memory = lambda cpu_float32: original(False)  # type: ignore[attr-defined]
    else:
        raise ValueError(setting)


def _run(job: Tuple[str, ...], env: Dict[str, str]) -> dict:
    proc = subprocess.run(
        [sys.executable, str(HERE / "bench_dataset.py"), "--rss-child", *job], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{job} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(
    work: Path,
    model: str,
    sizes: Sequence[int],
    repeats: int,
    cases: Sequence[str],
    ablate: Sequence[str],
    jobs: int,
    largest_repeats: int = 0,
) -> List[str]:
    r"""Run every child, return the markdown lines."""
    from captum_normxlogit.resources import rotten_tomatoes_sentences, sentiment_minilm_dir

    texts = [text for text, _ in rotten_tomatoes_sentences()]
    model_dir = str(make_tiny_model(work / "tiny-model") if model == "tiny" else sentiment_minilm_dir())
    warm = work / "warm.jsonl"
    write_data(warm, texts, 64)
    for size in sizes:
        write_data(work / f"rt{size}.jsonl", texts, size)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "ARROW_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])
    reps = {size: (largest_repeats or repeats) if size == max(sizes) else repeats for size in sizes}
    plan = [(case, size, rep) for size in sorted(sizes, reverse=True) for rep in range(reps[size]) for case in cases]
    if ablate:
        plan += [(case, size, 0) for case in ablate for size in sorted(sizes)[:2]]
    load_start = os.getloadavg()[1]
    started = time.time()
    with ThreadPoolExecutor(jobs) as pool:  # the largest first, so the pool's tail is short
        futures = {
            key: pool.submit(
                _run,
                (
                    key[0],
                    model_dir,
                    str(work / f"rt{key[1]}.jsonl"),
                    str(work / f"out-{key[0]}-{key[1]}-{key[2]}"),
                    str(warm),
                ),
                env,
            )
            for key in plan
        }
        results = {key: future.result() for key, future in futures.items()}
    minutes = (time.time() - started) / 60
    return _table(results, model, sizes, reps, cases, ablate, jobs, load_start, minutes)


def _slope(points: Dict[int, float]) -> float:
    r"""Least-squares MiB per 100k rows over the sizes."""
    xs, ys = list(points), list(points.values())
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs) * 1e5


def _table(results, model, sizes, reps, cases, ablate, jobs, load_start, minutes) -> List[str]:
    what = "random 2-layer BERT (hidden 64) with MiniLM's tokenizer" if model == "tiny" else "fine-tuned MiniLM-L6"
    lines = [
        f"Peak RSS of streaming runs, {what}; the 4,000 Rotten-Tomatoes sentences repeated to each size "
        f"(a .jsonl); fresh processes per case and size: "
        + ", ".join(f"{reps[s]} at {s:,}" for s in sorted(sizes))
        + f" (medians, range in brackets), {jobs} at a "
        f"time, `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}`, under `nice` on a 2-core "
        f"machine shared with other jobs (5-minute load {load_start:.1f} at the start, "
        f"{os.getloadavg()[1]:.1f} at the end, {minutes:.0f} min).",
        "",
        "| case | rows | peak RSS MiB | / 4,000 | s per 100k rows |",
        "|---|---:|---:|---:|---:|",
    ]
    small = min(sizes)
    summary = []
    for case in cases:
        peaks = {size: [results[(case, size, r)]["delta_mib"] for r in range(reps[size])] for size in sizes}
        secs = {size: [results[(case, size, r)]["seconds"] * 1e5 / size for r in range(reps[size])] for size in sizes}
        base = statistics.median(peaks[small])
        for size in sorted(sizes):
            med = statistics.median(peaks[size])
            lines.append(
                f"| {case} | {size:,} | {med:.1f} ({min(peaks[size]):.1f}-{max(peaks[size]):.1f}) | "
                f"{med / base:.2f}x | {statistics.median(secs[size]):.1f} |"
            )
        medians = {size: statistics.median(peaks[size]) for size in sizes}
        summary.append(
            f"{case}: {max(sizes):,} / {small:,} rows peak ratio "
            f"{medians[max(sizes)] / base:.2f} (target <= 1.10); slope "
            f"{_slope(medians):+.1f} MiB per 100k rows (least squares over {len(sizes)} sizes)"
        )
        bounds = [0, *sorted(sizes)]
        windows = list(zip(bounds[:-1], bounds[1:]))
        if len(windows) > 1:
            for r in range(reps[max(sizes)]):
                times = results[(case, max(sizes), r)]["shard_times"]
                per = []
                for a, b in windows:
                    first, last = a // 1024, min(b, len(times) * 1024) // 1024 - 1
                    t0 = times[first - 1] if first else 0.0
                    per.append((times[last] - t0) * 1e5 / ((last + 1 - first) * 1024))
                spans = ", ".join(f"rows {a:,}-{b:,} {t:.1f}" for (a, b), t in zip(windows, per))
                summary.append(
                    f"  {case} {max(sizes):,}-row run {r + 1}, s per 100k rows within the run: {spans} "
                    "(from the shards' modification times)"
                )
    lines += [""] + summary
    if ablate:
        lines += [
            "",
            "Each allocator setting's effect (one fresh process each):",
            "",
            f"| case | peak RSS MiB, {sorted(sizes)[0]:,} | {sorted(sizes)[1]:,} | ratio | s per 100k rows "
            f"({sorted(sizes)[1]:,}) |",
            "|---|---:|---:|---:|---:|",
        ]
        a, b = sorted(sizes)[:2]
        for case in ("python", *ablate):
            pa_, pb = (results[(case, a, 0)]["delta_mib"], results[(case, b, 0)]["delta_mib"])
            lines.append(
                f"| {case} | {pa_:.1f} | {pb:.1f} | {pb / pa_:.2f}x | "
                f"{results[(case, b, 0)]['seconds'] * 1e5 / b:.1f} |"
            )
    return lines
