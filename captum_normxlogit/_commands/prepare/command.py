r"""``normxlogit prepare``: fetch the data and build the cached real models (the options and the code of
``python -m captum_normxlogit.resources prepare``, so the two cannot drift)."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(commands: "argparse._SubParsersAction") -> None:
    from captum_normxlogit.resources.__main__ import DESCRIPTION, add_options

    prepare = commands.add_parser(
        "prepare",
        help="fetch the data and build the cached real models (MiniLM fine-tuned, SmolLM2) used by demo and evaluate",
        description=DESCRIPTION,
    )
    add_options(prepare)
    prepare.set_defaults(run=_run)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from captum_normxlogit.resources.__main__ import prepare

    return prepare(args)
