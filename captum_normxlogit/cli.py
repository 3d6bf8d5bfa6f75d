r"""The ``normxlogit`` command: a dispatcher over ``captum_normxlogit._commands``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from typing import Iterator, List, NoReturn, Optional

__all__ = ["main"]

# Listed explicitly (no discovery): a missing command module is a packaging bug and must fail loudly.
# A command's package is its name with "-" as "_" (check-model -> _commands/check_model/).
COMMANDS = (
    "demo",
    "explain",
    "evaluate",
    "check-model",
    "attribute-dataset",
    "summarize",
    "merge-dataset",
    "prepare",
)


class _Parser(argparse.ArgumentParser):
    r"""Every refusal is one line (``normxlogit CMD: error: ...``), exit code 2: argparse's usage
    block above it hid the sentence that says what to do (``--help`` still shows the usage)."""

    def error(self, message: str) -> "NoReturn":
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


class _HelpFormatter(argparse.HelpFormatter):
    r"""argparse measures command names one indent short, so a long one (attribute-dataset) lost its help line."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if action.help is not argparse.SUPPRESS and hasattr(action, "_get_subactions"):
            for sub in action._get_subactions():
                width = len(self._format_action_invocation(sub)) + self._current_indent + self._indent_increment
                self._action_max_length = max(self._action_max_length, width)


def _parser() -> argparse.ArgumentParser:
    from captum_normxlogit import __version__

    parser = _Parser(
        prog="normxlogit",
        description="NormXLogit token attributions for Hugging Face transformers (a Captum plugin).",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"captum_normxlogit._commands.{name.replace('-', '_')}").register(commands)
    return parser


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _terminate_cleanly() -> Iterator[None]:
    r"""SIGTERM (``kill``, ``timeout``) exits through Python's clean-up like Ctrl-C does, so a
    file being written is removed, not left behind; SIGKILL cannot be caught (see docs/reliability.md)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Past a file-size limit (`ulimit -f`) the kernel's SIGXFSZ would kill the process mid-write with a
    # core dump; ignored, the write fails with EFBIG and the writers say so in one line, leaving nothing.
    too_large = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGXFSZ, too_large)


def main(argv: Optional[List[str]] = None) -> int:
    r"""Entry point of the ``normxlogit`` console script."""
    # Arrow's default pool (mimalloc) keeps every freed shard buffer, so a long attribute-dataset run's
    # memory creeps; the system allocator returns it. Only this process's default; a user's setting wins.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    # The subparser that matched is the one whose defaults set ``run``; argparse keeps it in
    # private attributes that its stubs type loosely (Optional, Iterable).
    sub = parser._subparsers._group_actions[0].choices[args.command]  # type: ignore[union-attr,index]
    try:
        with _terminate_cleanly():
            return int(args.run(args, sub) or 0)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; nothing half-written was left", file=sys.stderr)
        return 130
    except OSError as error:  # a write that failed mid-run (the writers' WriteError names the path), or a
        # system error no command foresaw: one line, never a traceback; exit 1, the run failed.
        from captum_normxlogit._utils.atomic import WriteError, os_error_reason

        if not isinstance(error, WriteError):
            where = f"{error.filename}: " if error.filename else ""
            error = WriteError(error.errno or 0, f"{where}{os_error_reason(error)}; nothing was left half-written")
        print(f"{sub.prog}: error: {_one_line(error)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
