"""Where attribute_dataset's memory goes, shard by shard: RSS, peak, glibc heap, pyarrow pool, Python objects.

An investigation aid, not a benchmark (``bench_dataset.py --parts rss`` gives the
numbers quoted): one run over the 4,000 Rotten-Tomatoes sentences repeated
``--times`` times as a ``.jsonl``, after a 64-example warm-up, printing after
every shard, relative to the RSS at the start of the call:

* ``rss``: resident memory between shards; ``peak``: the highest RSS during
  that shard (the mark is reset after each one);
* ``anon``/``file``: anonymous and file-backed resident memory, absolute MiB;
  ``threads``: the process's thread count;
* ``heap``/``used``/``mmap``: glibc's ``mallinfo2`` (heap obtained from the
  system, bytes in use in it, bytes in mmapped blocks), absolute MiB;
* ``pa``: bytes held by pyarrow's default pool (now / its maximum so far);
* ``py`` (``--tracemalloc``): live Python-allocated bytes (tracemalloc), and
  the sources that grew most between shard 1 and later shards.

``--tiny`` swaps the classifier for a 1-layer, 32-wide BERT with the same
tokenizer: the pipeline (reading, tokenizing, rows, Parquet) without the
model's activations. ``--default-chunks`` reads the file with ``datasets``'
default chunk sizes instead of the package's.

Usage: nice python benchmarks/probe_dataset_memory.py [--times 10] [--tiny] [--tracemalloc] [--default-chunks]
(run it with and without ``MALLOC_MMAP_THRESHOLD_=131072`` to compare glibc's settings)
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import shutil
import sys
import tempfile
import tracemalloc
from pathlib import Path

import pyarrow as pa
import torch

from captum_normxlogit.utils import reset_peak, status_mib

MIB = 2**20


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mallinfo() -> dict:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    return {"heap": info.arena / MIB, "used": info.uordblks / MIB, "mmap": info.hblkhd / MIB}


def _threads() -> int:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("Threads:"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--times", type=int, default=10, help="copies of the 4,000 sentences (default: %(default)s)")
    parser.add_argument("--tiny", action="store_true", help="a tiny random BERT instead of the fine-tuned MiniLM")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slower)")
    parser.add_argument("--default-chunks", action="store_true", help="datasets' default read chunk sizes")
    args = parser.parse_args()

    from captum_normxlogit.dataset import _sources, api, attribute_dataset
    from captum_normxlogit.resources import load_sentiment_minilm, rotten_tomatoes_sentences

    model, tokenizer = load_sentiment_minilm(train_if_missing=False, progress=False)
    if args.tiny:
        from transformers import BertConfig, BertForSequenceClassification

        torch.manual_seed(0)
        model = BertForSequenceClassification(
            BertConfig(  # type: ignore[call-arg]  # num_labels
                vocab_size=len(tokenizer),
                hidden_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=64,
                num_labels=2,
            )
        ).eval()
    if args.default_chunks:
        _sources.READ_CHUNKS.clear()
    texts = [text for text, _ in rotten_tomatoes_sentences()]
    work = Path(tempfile.mkdtemp(prefix="probe-dataset-memory-"))
    for name, times in (("warm", 1), ("data", args.times)):
        with open(work / f"{name}.jsonl", "w", encoding="utf-8") as handle:
            for _ in range(times):
                handle.writelines(json.dumps({"text": text}) + "\n" for text in texts)
    attribute_dataset(model, tokenizer, str(work / "warm.jsonl"), work / "warm", progress=False, limit=64)

    samples, snapshots = [], {}
    write_shard = api.write_shard

    def sample(tag):
        row = {
            "tag": tag,
            "rss": status_mib("VmRSS"),
            "peak": status_mib("VmHWM"),
            "anon": status_mib("RssAnon"),
            "file": status_mib("RssFile"),
            "threads": _threads(),
            **_mallinfo(),
            "pa": pa.total_allocated_bytes() / MIB,
            "pa_max": pa.default_memory_pool().max_memory() / MIB,
        }
        if args.tracemalloc:
            row["py"] = tracemalloc.get_traced_memory()[0] / MIB
        samples.append(row)
        reset_peak()

    def traced_write_shard(path, table, meta):  # after each shard is on disk
        write_shard(path, table, meta)
        sample(meta["shard"])
        if args.tracemalloc and meta["shard"] in (1, 10, 20, 38):
            snapshots[meta["shard"]] = tracemalloc.take_snapshot()

    api.write_shard = traced_write_shard
    gc.collect()
    if args.tracemalloc:
        tracemalloc.start(8)
    sample("start")
    try:
        attribute_dataset(model, tokenizer, str(work / "data.jsonl"), work / "out", progress=False)
    finally:
        api.write_shard = write_shard
    sample("end")
    shutil.rmtree(work, ignore_errors=True)

    base = samples[0]["rss"]
    for row in samples:
        line = (
            f"{row['tag']!s:>5}  rss +{row['rss'] - base:6.1f}  peak +{row['peak'] - base:6.1f}  "
            f"anon {row['anon']:6.1f}  file {row['file']:5.1f}  threads {row['threads']:3d}  "
            f"heap {row['heap']:6.1f}  used {row['used']:6.1f}  mmap {row['mmap']:5.1f}  "
            f"pa {row['pa']:4.1f}/{row['pa_max']:4.1f}"
        )
        print(line + (f"  py {row['py']:6.1f}" if args.tracemalloc else ""))
    print(
        f"peak RSS above the start of the call: {max(r['peak'] for r in samples[1:]) - base:.1f} MiB "
        f"({args.times * len(texts):,} examples{', tiny model' if args.tiny else ''}"
        f"{', datasets default chunks' if args.default_chunks else ''})"
    )
    if len(snapshots) > 1:
        first = min(snapshots)
        for shard in sorted(snapshots)[1:]:
            print(f"-- Python allocations grown from shard {first} to shard {shard}:")
            for stat in snapshots[shard].compare_to(snapshots[first], "traceback")[:5]:
                print(
                    f"   {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  "
                    + " <- ".join(str(frame) for frame in list(stat.traceback)[::-1][:3])
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
