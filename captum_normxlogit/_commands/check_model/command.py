r"""``normxlogit check-model DIR``: how NormXLogit supports a local model, its checks and its cost."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]

_DESCRIPTION = """\
Load a local Hugging Face model folder (config.json and weights; no tokenizer needed) and report how
NormXLogit supports it: a registered family, the verified automatic adapter (built from Hugging Face's
conventions and used only when its captured hidden states equal the model's output_hidden_states and
its head reproduces the model's logits on a small probe), or refused, with the reason. Also prints the
task, the number of layers, the largest difference each check found, and the time of one NormXLogit
call beside a bare forward pass on the probe (2 x 6 random tokens; the median of --repeats runs).
Exit status: 0 when the model is supported, 1 when it is refused, 2 for a bad folder.
"""

_EPILOG = """\
examples:
  normxlogit check-model ~/.cache/captum_normxlogit/models/smollm2-135m-instruct-*
  normxlogit check-model path/to/saved/model --repeats 20
"""


def register(commands: "argparse._SubParsersAction") -> None:
    check = commands.add_parser(
        "check-model",
        help="report how a local model is supported (registered / verified automatic adapter / refused) and its cost",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("folder", metavar="DIR", help="a folder written by save_pretrained()")
    check.add_argument(
        "--repeats",
        type=int,
        default=5,
        metavar="N",
        help="timed runs of each call on the probe, median reported (default: %(default)s)",
    )
    check.set_defaults(run=_run)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    from captum_normxlogit._models.load import ModelFolderError, load_model_folder

    folder = Path(args.folder).expanduser()
    try:  # no tokenizer needed: the probe is random ids
        model, _, _ = load_model_folder(args.folder, tokenizer=False, any_architecture=True)
    except ModelFolderError as error:
        parser.error(str(error))
    from captum_normxlogit._core.check import check_model

    report = check_model(model, repeats=args.repeats)
    print(f"{folder}:")
    print(report.format())
    if not report.supported:
        print(f"refused: {report.reason}", file=sys.stderr)
        return 1
    return 0
