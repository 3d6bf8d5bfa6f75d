r"""The ``normxlogit`` command: a dispatcher over ``captum_normxlogit._commands``."""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

__all__ = ["main"]

# Listed explicitly (no discovery): a missing command module is a packaging bug and must fail loudly.
COMMANDS = ("demo", "explain", "evaluate", "summarize")


def _parser() -> argparse.ArgumentParser:
    from captum_normxlogit import __version__

    parser = argparse.ArgumentParser(
        prog="normxlogit",
        description="NormXLogit token attributions for Hugging Face transformers (a Captum plugin).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"captum_normxlogit._commands.{name}").register(commands)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    r"""Entry point of the ``normxlogit`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    # The subparser that matched is the one whose defaults set ``run``.
    sub = parser._subparsers._group_actions[0].choices[args.command]  # type: ignore[union-attr]
    return int(args.run(args, sub) or 0)


if __name__ == "__main__":
    sys.exit(main())
