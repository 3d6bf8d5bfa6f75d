r"""``normxlogit demo``: real sentences and a next token, NormXLogit beside Layer Integrated Gradients."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(commands: "argparse._SubParsersAction") -> None:
    from captum_normxlogit.methods import LAYER_IG, NORMXLOGIT

    demo = commands.add_parser(
        "demo",
        help=f"explain real sentences (fine-tuned MiniLM) and a SmolLM2 next token, beside {LAYER_IG.name}",
        description=(
            f"Explain a few real Rotten-Tomatoes sentences with the fine-tuned MiniLM classifier and one "
            f"next-token prediction of SmolLM2-135M, {NORMXLOGIT.name} beside {LAYER_IG.name}. Prints "
            "coloured tokens and writes an HTML page. The first run fine-tunes MiniLM (a few minutes) "
            "and caches it outside the repository."
        ),
    )
    demo.add_argument(
        "--html", default="normxlogit-demo.html", help="where to write the HTML page (default: %(default)s)"
    )
    demo.add_argument("--sentences", type=int, default=4, help="number of sentences to explain (default: %(default)s)")
    demo.add_argument(
        "--ig-steps",
        type=int,
        default=LAYER_IG.defaults["ig_steps"],
        help=f"{LAYER_IG.name} steps (default: %(default)s)",
    )
    demo.add_argument("--no-llm", action="store_true", help="skip the SmolLM2 next-token example")
    demo.add_argument(
        "--colour", "--color", choices=("auto", "always", "never"), default="auto", help="terminal colours"
    )
    demo.set_defaults(run=_run)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.sentences < 1 or args.ig_steps < 1:
        parser.error("--sentences and --ig-steps must be at least 1")
    from captum_normxlogit._utils.atomic import WriteError, check_writable

    try:  # before the models load (minutes on a first run): a bad path must not cost them
        check_writable(Path(args.html))
    except WriteError as error:
        parser.error(f"--html: {error}")
    from captum_normxlogit._commands.demo.logic import run_demo

    colour = {"auto": None, "always": True, "never": False}[args.colour]
    return run_demo(args.html, args.sentences, args.ig_steps, llm=not args.no_llm, colour=colour)
