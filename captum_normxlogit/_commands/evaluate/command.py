r"""``normxlogit evaluate``: the real-model experiments, written as CSV, Markdown and PNG."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

if TYPE_CHECKING:  # pragma: no cover
    from captum_normxlogit._commands.evaluate.tasks import Task

__all__ = ["register"]

_DESCRIPTION = """\
Run the evaluation experiments on the real models and write, per task, a table (CSV and
Markdown) and its plots into --output:

{tasks}
"""
# Filled and wrapped at registration: the method names come from the method table.
_SENTIMENT = (
    "The sentiment tasks run {method_names} and score each with the paper's comprehensiveness and "
    "sufficiency (probability drop and gold-label accuracy, K = 0..100 %, and the ERASER bins), with wall "
    "time and peak memory per method. The real models are prepared once with "
    "`python -m captum_normxlogit.resources prepare`."
)

_EPILOG = """\
examples:
  normxlogit evaluate                                   # every task, as committed in benchmarks/results/evaluation
  normxlogit evaluate --task sentiment-minilm --limit 50 --output out/quick
  normxlogit evaluate --task sentiment-smollm2 --methods {example_methods} --limit 20
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    r"""Wraps option help between words only, so a task name such as agreement-smollm2 stays whole."""

    def _split_lines(self, text: str, width: int) -> List[str]:
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _per_task(option: str) -> str:
    r"""``"sentiment-minilm 16, sentiment-smollm2 8, ..."``: each task's default of ``option`` from the table."""
    from captum_normxlogit._commands.evaluate.tasks import TASKS

    values = {name: getattr(task, option) for name, task in TASKS.items()}
    return ", ".join(f"{name} {'all' if value is None else value}" for name, value in values.items())


def register(commands: "argparse._SubParsersAction") -> None:
    import textwrap

    from captum_normxlogit._commands.evaluate.tasks import TASKS
    from captum_normxlogit.methods import METHOD_KEYS, METHODS, NORMXLOGIT, RANDOM, SALIENCY, methods_help

    width = max(len(name) for name in TASKS) + 2
    listing = "\n".join(f"  {name:<{width}}{task.description}" for name, task in TASKS.items())
    names = [spec.name for spec in METHODS.values()]
    sentiment = _SENTIMENT.format(method_names=", ".join(names[:-1]) + f" and {names[-1]}")
    description = f"{_DESCRIPTION.format(tasks=listing)}\n{textwrap.fill(sentiment, 98)}\n"
    epilog = _EPILOG.format(example_methods=",".join((NORMXLOGIT.key, SALIENCY.key, RANDOM.key)))
    evaluate = commands.add_parser(
        "evaluate",
        help="faithfulness (and evidence-alignment) experiments on the real models: CSV, Markdown and PNG",
        description=description,
        epilog=f"{epilog}\nmethods (--methods, comma-separated, case-insensitive):\n"
        f"{methods_help(ig_steps='N (--ig-steps)')}\n",
        formatter_class=_HelpFormatter,
    )
    evaluate.add_argument(
        "--task", choices=(*TASKS, "all"), default="all", help="which experiment (default: %(default)s)"
    )
    evaluate.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help=f"use only the first N sentences / items (default: per task: {_per_task('limit')})",
    )
    evaluate.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="N",
        help=f"examples per attribution call (default: per task: {_per_task('batch_size')})",
    )
    evaluate.add_argument(
        "--ig-steps",
        type=int,
        default=None,
        metavar="N",
        help=f"Integrated Gradients steps (default: per task: {_per_task('ig_steps')})",
    )
    evaluate.add_argument(
        "--methods",
        default=None,
        metavar="KEYS",
        help=f"comma-separated subset of {','.join(METHOD_KEYS)} for the sentiment tasks (default: all)",
    )
    evaluate.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    evaluate.add_argument(
        "--output",
        default="out/evaluation",
        metavar="DIR",
        help="folder for the CSV, Markdown and PNG files (default: %(default)s)",
    )
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
    from captum_normxlogit._utils.atomic import WriteError, check_writable

    if Path(output).is_file():
        parser.error(f"--output {output} is a file; pass a folder (it is created if needed)")
    try:
        check_writable(Path(output) / "evaluation.csv")
    except WriteError as error:
        parser.error(f"--output {output}: {error}")


def _options(task: "Task", args: argparse.Namespace, methods: Optional[List[str]]) -> Dict[str, Any]:
    r"""The runner's keyword arguments: only the options given, so the table's defaults apply to the rest."""
    kwargs: Dict[str, Any] = {"device": args.device, "progress": not args.no_progress}
    for name in ("limit", "batch_size", "ig_steps"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if task.takes_methods:
        kwargs["methods"] = methods
    return kwargs


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from captum_normxlogit._commands.evaluate.tasks import TASKS

    methods = _check(args, parser)
    tasks = list(TASKS.values()) if args.task == "all" else [TASKS[args.task]]
    own = [task.name for task in tasks if not task.takes_methods]
    if methods is not None and own:
        print(f"note: --methods applies to the sentiment tasks; {', '.join(own)} runs its own set", file=sys.stderr)
    import pandas as pd

    for task in tasks:
        print(f"== {task.name}", flush=True)
        start = time.perf_counter()
        result = task.function()(**_options(task, args, methods))
        paths = result.write(args.output)
        with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
            print(result.table.to_string(index=False))
        print(
            f"{task.name}: {time.perf_counter() - start:.0f} s; wrote " + ", ".join(str(p) for p in paths), flush=True
        )
    return 0
