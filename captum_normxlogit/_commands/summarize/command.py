r"""``normxlogit summarize DIR``: the dataset-level summary of an ``attribute-dataset`` folder."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["register"]

_DESCRIPTION = """\
Summarise a folder written by `normxlogit attribute-dataset` (or attribute_dataset()): per
explained class, the words (sub-words merged; --level token for vocabulary tokens) the model
leans on across the dataset. For every item it counts the examples that contain it and gives
the mean score (an item's score in an example is the sum over its occurrences), the mean of the
score standardised within each example (z) and divided by the example's max |score|, their
one-sided 95 % lower confidence bounds, and the share of examples where it scores highest.
Special tokens are reported apart. Items are ranked by --statistic among those in at least
--min-count examples of the class. Prints Markdown; --csv, --html and --png write files.
"""

_EPILOG = """\
examples:
  normxlogit summarize out/rt
  normxlogit summarize out/rt --top 10 --html out/rt-summary.html --png out/rt-top.png
  normxlogit summarize out/rt --level token --statistic top_share --csv out/rt-summary.csv
"""


def register(commands: "argparse._SubParsersAction") -> None:
    from captum_normxlogit.dataset.summary import DEFAULT_MIN_COUNT, DEFAULT_STATISTIC, LEVELS, STATISTICS

    summarize = commands.add_parser(
        "summarize",
        help="dataset-level summary of an attribute-dataset folder: top words per class (Markdown, CSV, HTML, PNG)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    summarize.add_argument("folder", metavar="DIR", help="the output folder of attribute-dataset")
    summarize.add_argument("--top", type=int, default=20, metavar="N", help="items per class (default: %(default)s)")
    summarize.add_argument("--level", choices=LEVELS, default="word", help="words or tokens (default: %(default)s)")
    summarize.add_argument(
        "--statistic",
        choices=STATISTICS,
        default=DEFAULT_STATISTIC,
        help="what ranks the items (default: %(default)s, chosen by the ablation study in benchmarks/results/dataset)",
    )
    summarize.add_argument(
        "--min-count",
        type=int,
        default=DEFAULT_MIN_COUNT,
        metavar="N",
        help="fewest examples of a class an item must occur in to be ranked (default: %(default)s)",
    )
    summarize.add_argument(
        "--html", metavar="FILE", default=None, help="write an HTML page: top items per class with example sentences"
    )
    summarize.add_argument("--png", metavar="FILE", default=None, help="write a bar chart of the top items per class")
    summarize.add_argument("--csv", metavar="FILE", default=None, help="write the full table (every class and item)")
    summarize.add_argument(
        "--examples",
        type=int,
        default=3,
        metavar="K",
        help="example sentences per item on the HTML page (default: %(default)s)",
    )
    summarize.add_argument(
        "--quiet", action="store_true", help="no progress bar (it is shown only on a terminal, for large folders)"
    )
    summarize.set_defaults(run=_run)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    for name in ("top", "min_count", "examples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    from captum_normxlogit._utils.atomic import WriteError, check_writable

    for option in ("html", "png", "csv"):
        path = getattr(args, option)
        if path and os.path.isdir(path):  # False for a name too long to stat: check_writable says so
            parser.error(f"--{option} {path} is a directory; pass a file name such as summary.{option}")
        try:  # before the folder is read: a bad path must not cost the whole summary
            if path:
                check_writable(Path(path))
        except WriteError as error:
            parser.error(f"--{option}: {error}")
    folder = Path(args.folder)
    if not folder.is_dir():
        parser.error(f"{folder} is not a folder; pass the output folder of `normxlogit attribute-dataset`")
    from captum_normxlogit.dataset import ManifestError, open_attribution
    from captum_normxlogit.dataset.report import plot_top, summary_markdown, write_html_report

    try:
        handle = open_attribution(folder)
    except ManifestError as error:  # the rows beside a damaged manifest are intact: say how to read them
        parser.error(f"{error} (and summarise them with captum_normxlogit.dataset.summarize(frame))")
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        parser.error(str(error))
    if not handle.complete:
        print(
            f"note: {folder} is not complete (an interrupted run?); summarising the shards written so far",
            file=sys.stderr,
        )
    try:
        summary = handle.summary(
            statistic=args.statistic, min_count=args.min_count, progress=not args.quiet and sys.stderr.isatty()
        )
    except ValueError as error:
        parser.error(str(error))
    print(summary_markdown(summary, args.top, level=args.level))
    written = []
    if args.csv:
        summary.to_csv(args.csv)
        written.append(args.csv)
    if args.png:
        plot_top(summary, args.png, n=args.top, level=args.level)
        written.append(args.png)
    if args.html:
        write_html_report(
            summary,
            args.html,
            n=args.top,
            examples_per_item=args.examples,
            level=args.level,
            title=f"normxlogit summarize {folder}",
        )
        written.append(args.html)
    if written:
        print("wrote " + ", ".join(written))
    return 0
