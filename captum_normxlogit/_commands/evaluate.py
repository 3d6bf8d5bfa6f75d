r"""``normxlogit evaluate``: the real-model experiments, written as CSV, Markdown and PNG."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

__all__ = ["TASKS", "register"]

TASKS = ("sentiment-minilm", "sentiment-smollm2", "agreement-smollm2")

_DESCRIPTION = """\
Run the evaluation experiments on the real models and write, per task, a table (CSV and
Markdown) and its plots into --output:

  sentiment-minilm   fine-tuned MiniLM on the 500 held-out Rotten-Tomatoes sentences
  sentiment-smollm2  SmolLM2-135M as a label-word sentiment classifier on the first 100 of them
  agreement-smollm2  evidence alignment of SmolLM2-135M on agreement items

The sentiment tasks run NormXLogit, LogAt, Norm, IntegratedGradients, LayerIntegratedGradients,
Saliency, InputXGradient and a seeded random baseline, and score each with the paper's
comprehensiveness and sufficiency (probability drop and gold-label accuracy, K = 0..100 %, and
the ERASER bins), with wall time and peak memory per method. The real models are prepared once
with `python -m captum_normxlogit.resources prepare`.
"""

_EPILOG = """\
examples:
  normxlogit evaluate                                   # every task, as committed in benchmarks/results/evaluation
  normxlogit evaluate --task sentiment-minilm --limit 50 --output out/quick
  normxlogit evaluate --task sentiment-smollm2 --methods normxlogit,saliency,random --limit 20
"""


def register(commands: "argparse._SubParsersAction") -> None:
    from captum_normxlogit.methods import METHOD_KEYS

    evaluate = commands.add_parser(
        "evaluate",
        help="faithfulness (and evidence-alignment) experiments on the real models: CSV, Markdown and PNG",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("--task", choices=(*TASKS, "all"), default="all",
                          help="which experiment (default: %(default)s)")
    evaluate.add_argument("--limit", type=int, default=None, metavar="N",
                          help="use only the first N sentences / items (default: per task, all 500 sentences for "
                               "MiniLM, the first 100 for SmolLM2 sentiment, every agreement item)")
    evaluate.add_argument("--batch-size", type=int, default=None, metavar="N",
                          help="examples per attribution call (default: per task, 16 for MiniLM, 8 for SmolLM2)")
    evaluate.add_argument("--ig-steps", type=int, default=None, metavar="N",
                          help="Integrated Gradients steps (default: per task, 20 for MiniLM, 10 for SmolLM2 "
                               "sentiment, 20 for agreement)")
    evaluate.add_argument("--methods", default=None, metavar="KEYS",
                          help=f"comma-separated subset of {','.join(METHOD_KEYS)} for the sentiment tasks "
                               "(default: all)")
    evaluate.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    evaluate.add_argument("--output", default="out/evaluation", metavar="DIR",
                          help="folder for the CSV, Markdown and PNG files (default: %(default)s)")
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    evaluate.set_defaults(run=_run)


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Optional[List[str]]:
    for name in ("limit", "batch_size", "ig_steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    methods = None
    if args.methods is not None:
        from captum_normxlogit.methods import parse_method_keys

        try:
            methods = parse_method_keys(args.methods)
        except ValueError as exc:
            parser.error(str(exc))
    import torch

    try:
        device = torch.device(args.device)
    except (RuntimeError, ValueError) as exc:
        parser.error(f"--device {args.device!r} is not a torch device ({exc})")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available here; use --device cpu")
    _check_output(args.output, parser)
    return methods


def _check_output(output: str, parser: argparse.ArgumentParser) -> None:
    r"""Refuse an unwritable --output now, not after the run's minutes (nothing is created here)."""
    from captum_normxlogit._utils.atomic import check_writable

    try:
        check_writable(Path(output) / "evaluation.csv")
    except OSError as error:
        parser.error(f"--output {output}: cannot write there ({error.strerror or error}); pass a folder you can write to")


def _runner(task: str, args: argparse.Namespace, methods: Optional[List[str]]) -> Callable[[], Any]:
    kwargs: Dict[str, Any] = {"device": args.device, "progress": not args.no_progress}
    for name in ("limit", "batch_size", "ig_steps"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if task == "agreement-smollm2":
        from captum_normxlogit._experiments.agreement import run_agreement

        return lambda: run_agreement(**kwargs)
    from captum_normxlogit._experiments import sentiment

    run = sentiment.run_sentiment_minilm if task == "sentiment-minilm" else sentiment.run_sentiment_smollm2
    return lambda: run(methods=methods, **kwargs)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    methods = _check(args, parser)
    tasks = TASKS if args.task == "all" else (args.task,)
    if methods is not None and "agreement-smollm2" in tasks:
        print("note: --methods applies to the sentiment tasks; agreement-smollm2 runs its own set", file=sys.stderr)
    import pandas as pd

    for task in tasks:
        print(f"== {task}", flush=True)
        start = time.perf_counter()
        result = _runner(task, args, methods)()
        paths = result.write(args.output)
        with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
            print(result.table.to_string(index=False))
        print(f"{task}: {time.perf_counter() - start:.0f} s; wrote " + ", ".join(str(p) for p in paths), flush=True)
    return 0
