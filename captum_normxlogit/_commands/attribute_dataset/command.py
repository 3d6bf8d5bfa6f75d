r"""``normxlogit attribute-dataset DATA``: NormXLogit over a whole dataset, into resumable Parquet shards."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

__all__ = ["register"]

_DESCRIPTION = """\
Explain every example of DATA (a local .jsonl, .json, .csv, .parquet or .arrow file) with NormXLogit, one
forward pass per length-aware batch, and write one Parquet row per example into --output (shards
part-NNNNNN.parquet and a .manifest.json). Read the result with pandas.read_parquet(OUTPUT). Rerunning the
same command resumes: finished shards are kept, missing or damaged ones are redone; other settings or
another model are refused unless --no-resume. Under `torchrun --nproc_per_node N` the examples are split
between the N processes and the folder is the same as with one; with `torchrun --nnodes M` on M machines,
give every node the same --output on a shared filesystem. The progress bar (stderr) has a total and an
ETA when the file's rows can be counted cheaply (.jsonl, .csv, .parquet, .arrow) and counts every rank's
rows; the last line says what a resumed run kept and what it wrote.
"""

_EPILOG = """\
examples:
  normxlogit attribute-dataset test.jsonl --model ./my-classifier --output out/test --label-column label
  normxlogit attribute-dataset test.csv --model ./my-classifier --output out/gold --target column:label
  normxlogit attribute-dataset prompts.jsonl --model ./smollm2 --output out/lm --target column:answer
  torchrun --nproc_per_node 2 -m captum_normxlogit.cli attribute-dataset test.jsonl --model M --output out/t
"""


def _layers(value: str):
    if value == "all":
        return "all"
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--layers takes 'all' or comma-separated indices like 0,3,6; got {value!r}"
        ) from None


def register(commands: "argparse._SubParsersAction") -> None:
    cmd = commands.add_parser(
        "attribute-dataset",
        help="explain every example of a dataset file into resumable Parquet shards",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("data", metavar="DATA", help="a local .jsonl / .json / .csv / .parquet / .arrow file")
    cmd.add_argument(
        "--model",
        metavar="DIR",
        default=None,
        help="local Hugging Face model folder (default: the embedded fine-tuned MiniLM, `make prepare`)",
    )
    cmd.add_argument("--output", metavar="DIR", required=True, help="folder for the shards and the manifest")
    cmd.add_argument("--text-column", default="text", help="column holding the text (default: %(default)s)")
    cmd.add_argument("--pair-column", default=None, help="second text of sentence pairs")
    cmd.add_argument("--label-column", default=None, help="gold label, stored with each row")
    cmd.add_argument(
        "--target",
        default=None,
        help="what to explain: a label name or index (classifier), a token (LM), or column:NAME to read "
        "it per row; a causal LM's string target is a teacher-forced continuation "
        "(default: the model's prediction)",
    )
    cmd.add_argument("--foil", default=None, help="a contrastive alternative to the target (same forms)")
    cmd.add_argument("--layers", type=_layers, default=None, help="also store layer-wise scores: all or 0,3,6")
    cmd.add_argument(
        "--max-tokens-per-batch",
        type=int,
        default=8192,
        help="upper bound on batch size x padded length per batch (default: %(default)s)",
    )
    cmd.add_argument("--max-length", type=int, default=None, help="token limit below the model's own")
    cmd.add_argument("--truncate", action="store_true", help="cut over-long texts instead of treating them as errors")
    cmd.add_argument("--shard-size", type=int, default=1024, help="examples per shard (default: %(default)s)")
    cmd.add_argument("--limit", type=int, default=None, help="explain only the first N examples")
    cmd.add_argument("--no-resume", action="store_true", help="start over instead of resuming into --output")
    cmd.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="raise",
        help="a bad row stops the run (raise) or is recorded with its error (skip) (default: %(default)s)",
    )
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    cmd.add_argument(
        "--device",
        default=None,
        help="where to run the model: cpu, cuda, cuda:N, mps (default: the GPU when there is one, else cpu; "
        "under torchrun each rank takes its own GPU)",
    )
    cmd.set_defaults(run=_run)


def _check_output(output: Path) -> None:
    r"""An --output that cannot hold the manifest is refused before the model is loaded (nothing is created)."""
    from captum_normxlogit._utils.atomic import WriteError, check_writable
    from captum_normxlogit.dataset import MANIFEST_NAME

    if output.is_file():
        raise ValueError(f"--output {output} is a file; pass a folder (it is created if needed).")
    try:
        check_writable(output / MANIFEST_NAME)
    except WriteError as error:
        raise ValueError(f"--output {output}: {error}") from None


def _remove_if_only_ours(output: Path) -> None:
    r"""A failed run into a folder it created leaves no folder holding only its manifest (no shard was
    finished); a folder with finished shards stays, to be resumed."""
    from captum_normxlogit._utils.atomic import is_own_temporary
    from captum_normxlogit.dataset import MANIFEST_NAME

    if os.environ.get("RANK", "0") != "0" or not output.is_dir():
        return
    entries = [p for p in output.iterdir() if not is_own_temporary(p.name)]
    if all(p.name == MANIFEST_NAME and p.is_file() for p in entries):
        for path in entries:
            path.unlink()
        with contextlib.suppress(OSError):
            output.rmdir()


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from captum_normxlogit._models.errors import UnsupportedModelError
    from captum_normxlogit._models.load import ModelFolderError, load_model_folder
    from captum_normxlogit._utils.atomic import WriteError
    from captum_normxlogit._utils.device import resolve_device
    from captum_normxlogit.dataset import MANIFEST_NAME, DatasetRowError, RankLostError, attribute_dataset

    if args.model is None:
        from captum_normxlogit.resources import sentiment_minilm_dir

        args.model = str(sentiment_minilm_dir())
        if not (Path(args.model) / "config.json").is_file():
            print(
                "normxlogit attribute-dataset: error: the default model is not prepared; run `make prepare` "
                "(or `python -m captum_normxlogit.resources prepare`), or pass --model DIR",
                file=sys.stderr,
            )
            return 2
    try:
        device = resolve_device(args.device)  # before the model is loaded: a typo costs nothing
    except ValueError as error:
        print(f"normxlogit attribute-dataset: error: {error}", file=sys.stderr)
        return 2
    output = Path(args.output).expanduser()
    created = not output.exists()
    try:
        _check_output(output)
        try:
            model, tokenizer, _ = load_model_folder(args.model)
        except ModelFolderError as error:
            raise ValueError(f"--model {error}") from None
        result = attribute_dataset(
            model,
            tokenizer,
            args.data,
            args.output,
            text_column=args.text_column,
            pair_column=args.pair_column,
            label_column=args.label_column,
            target=args.target,
            foil=args.foil,
            layers=args.layers,
            max_tokens_per_batch=args.max_tokens_per_batch,
            max_length=args.max_length,
            truncation=args.truncate,
            shard_size=args.shard_size,
            resume=not args.no_resume,
            on_error=args.on_error,
            progress=not args.no_progress,
            limit=args.limit,
            device=device,
        )
    except BaseException as error:
        if created:
            _remove_if_only_ours(output)
        if isinstance(error, UnsupportedModelError):  # the one-line reason, as explain and check-model print it
            message = f"{error.reason} (`normxlogit check-model {args.model}` shows both checks)"
        elif isinstance(error, DatasetRowError):
            message = (
                f"{args.data} row {error.index}: {error.problem}; fix that row, or pass --on-error skip to "
                "record it with its error and go on"
            )
        elif isinstance(error, WriteError) or not isinstance(error, (ValueError, RuntimeError, OSError, TypeError)):
            raise  # a failed write (exit 1) or an interrupt: the entry point says it in one line
        elif isinstance(error, RankLostError):  # another node or rank died mid-run: a failed run, not a bad request
            print(f"normxlogit attribute-dataset: error: {error}", file=sys.stderr)
            return 1
        else:
            message = str(error)
        print(f"normxlogit attribute-dataset: error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":
        print(_summary_line(result, MANIFEST_NAME))
    return 0


def _shards(n: int) -> str:
    return f"{n:,} shard{'' if n == 1 else 's'}"


def _summary_line(result, manifest_name: str) -> str:
    r"""What the folder holds, and on a resume what this run kept and what it wrote."""
    counts = result.counts()
    run = result.manifest.get("run", {})
    seconds = run.get("seconds")
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    held = (
        f"{counts['rows']:,} rows ({counts['skipped']:,} skipped, {counts['tokens']:,} tokens) in "
        f"{counts['shards']} Parquet shard{'' if counts['shards'] == 1 else 's'}"
    )
    where = f"{result.output_dir}{took} (manifest: {result.output_dir / manifest_name})"
    kept, written = run.get("kept"), run.get("written")
    if not kept or not kept.get("shards") or not written:
        return f"wrote {held} to {where}"
    return (
        f"kept {kept['rows']:,} rows in {_shards(kept['shards'])} of an earlier run, wrote "
        f"{written['rows']:,} rows in {_shards(written['shards'])}: {held} in {where}"
    )
