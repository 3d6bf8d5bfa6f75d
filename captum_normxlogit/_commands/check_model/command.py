r"""``normxlogit check-model DIR``: how NormXLogit supports a local model, its checks and its cost."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["load_task_model", "register"]

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


def load_task_model(folder: Path):
    r"""The task model named by ``config.architectures`` in ``folder``, in float32 and eval mode.

    Raises:
        ValueError: When the folder has no usable ``config.json`` or the
            architecture is not a transformers class.
    """
    import torch
    import transformers
    from transformers import AutoConfig

    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder}: no config.json there; pass a folder written by save_pretrained().")
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except Exception as error:  # noqa: BLE001 - a corrupt or foreign config.json: JSON, key and type errors alike
        raise ValueError(
            f"{folder / 'config.json'} cannot be read ({' '.join(str(error).split())}); save the model again "
            "with save_pretrained()."
        ) from None
    architectures = list(getattr(config, "architectures", None) or [])
    cls = next((getattr(transformers, a) for a in architectures if hasattr(transformers, a)), None)
    if cls is None:
        raise ValueError(
            f"{folder}: config.architectures is {architectures or 'empty'}, not a transformers task-model class."
        )
    from captum_normxlogit._utils.quiet import quiet_transformers

    try:
        with quiet_transformers():
            model = cls.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    except Exception as error:  # noqa: BLE001 - broken weight files raise many kinds of error
        raise ValueError(
            f"{folder}: the weights cannot be loaded ({' '.join(str(error).split())}); save the model again "
            "with save_pretrained()."
        ) from None
    return model.eval()


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    folder = Path(args.folder).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "no such directory"
        parser.error(f"{args.folder}: {what}; pass a local Hugging Face model folder.")
    try:
        model = load_task_model(folder)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    from captum_normxlogit._core.check import check_model

    report = check_model(model, repeats=args.repeats)
    print(f"{folder}:")
    print(report.format())
    if not report.supported:
        print(f"refused: {report.reason}", file=sys.stderr)
        return 1
    return 0
