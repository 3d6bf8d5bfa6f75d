"""What the progress bar's total costs: counting a local file's rows before a run, against reading it once.

Writes a 40,000-row ``.jsonl`` and ``.csv`` (random sentences of 5-30 words, every tenth with a quoted
newline in the csv) and a ``.parquet`` under a temporary folder, then times
``captum_normxlogit.dataset._progress.count_file_rows`` on each, ``--repeats`` times (median), against one
streaming read of the same file by ``datasets`` (what ``attribute_dataset`` does with it; one run), and
prints a Markdown table.

Usage: nice python benchmarks/bench_row_count.py [--rows 40000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path


def _write(folder: Path, rows: int) -> list:
    import pandas as pd

    words = "a gorgeous witty movie the plot is thin dull film very good story and bad".split()
    rng = random.Random(0)
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 30))) for _ in range(rows)]
    texts = [t + ',\n"quoted"' if i % 10 == 0 else t for i, t in enumerate(texts)]
    with open(folder / "d.jsonl", "w") as handle:
        handle.writelines(json.dumps({"text": t, "label": i % 2}) + "\n" for i, t in enumerate(texts))
    frame = pd.DataFrame({"text": texts, "label": [i % 2 for i in range(rows)]})
    frame.to_csv(folder / "d.csv", index=False)
    frame.to_parquet(folder / "d.parquet")
    return [folder / name for name in ("d.jsonl", "d.csv", "d.parquet")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    import datasets

    from captum_normxlogit.dataset._progress import count_file_rows
    from captum_normxlogit.dataset._sources import FILE_BUILDERS

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory(prefix="bench-row-count-") as tmp:
        print(
            f"| file ({args.rows:,} rows) | MB | count_file_rows (median of {args.repeats}) | counted | "
            "one streaming read by datasets | count / read |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for path in _write(Path(tmp), args.rows):
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                counted = count_file_rows(path)
                times.append(time.perf_counter() - start)
            start = time.perf_counter()
            stream = datasets.load_dataset(
                FILE_BUILDERS[path.suffix], data_files=str(path), split="train", streaming=True
            )
            read = sum(1 for _ in stream)
            read_s = time.perf_counter() - start
            count_s = statistics.median(times)
            assert read == counted == args.rows, (path.name, read, counted)
            print(
                f"| {path.suffix} | {path.stat().st_size / 1e6:.1f} | {count_s * 1e3:.1f} ms | {counted:,} | "
                f"{read_s:.2f} s | {count_s / read_s:.3f} |"
            )


if __name__ == "__main__":
    main()
