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
  normxlogit summarize out/rt --verify --top-k 20 --html out/rt-verified.html
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
        "--verify",
        action="store_true",
        help="measure the occlusion effect of each class's top candidates on the model (cached in DIR)",
    )
    summarize.add_argument(
        "--model",
        metavar="MODEL_DIR",
        default=None,
        help="the model for --verify (default: the folder recorded in DIR's manifest)",
    )
    summarize.add_argument(
        "--top-k",
        type=int,
        default=None,
        metavar="K",
        help="candidates verified per class (default: 20, from the candidate-ranking study)",
    )
    summarize.add_argument(
        "--max-examples",
        type=int,
        default=None,
        metavar="N",
        help="most examples measured per word, a seeded sample (default: 100)",
    )
    summarize.add_argument(
        "--against",
        metavar="DIR_B",
        default=None,
        help="contrast with another attribute-dataset folder of the same data: the words that gained or lost "
        "weight from DIR to DIR_B (with --verify: checked by occlusion on each folder's model)",
    )
    summarize.add_argument(
        "--quiet", action="store_true", help="no progress bar (it is shown only on a terminal, for large folders)"
    )
    summarize.set_defaults(run=_run)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    for name in ("top", "min_count", "examples", "top_k", "max_examples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
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
    problems = handle.check()
    if problems and not handle.legacy:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        print(
            f"normxlogit summarize: error: {folder}'s shards do not match its manifest ({shown}); rerun the "
            "same attribute-dataset command to redo them (it keeps the sound shards), then summarize again",
            file=sys.stderr,
        )
        return 2
    if handle.legacy:
        print(
            f"note: {folder} was written by an earlier version (format {handle.manifest.get('format')!r}): "
            "its shards carry no checksums and are not verified"
            + (f" ({'; '.join(problems[:3])})" if problems else ""),
            file=sys.stderr,
        )
    if not handle.complete:
        print(
            f"note: {folder} is not complete (an interrupted run?); summarising the shards written so far",
            file=sys.stderr,
        )
    if args.against and not Path(args.against).is_dir():
        parser.error(f"--against {args.against} is not a folder; pass another output folder of attribute-dataset")
    if not args.verify and (args.model or args.max_examples or (args.top_k and not args.against)):
        parser.error("--model, --top-k and --max-examples go with --verify (or --against); add --verify")
    from captum_normxlogit._commands.summarize.checks import page_settings, print_contrast, verified_summary

    if args.against:
        try:
            print_contrast(handle, args)
        except (FileNotFoundError, ValueError) as error:
            parser.error(str(error))
        return 0
    try:
        summary = handle.summary(
            statistic=args.statistic, min_count=args.min_count, progress=not args.quiet and sys.stderr.isatty()
        )
        if args.verify:
            summary = verified_summary(handle, summary, args)
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
            settings=page_settings(handle, summary),
        )
        written.append(args.html)
    if written:
        print("wrote " + ", ".join(written))
    return 0
