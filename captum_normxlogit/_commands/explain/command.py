r"""``normxlogit explain TEXT``: coloured tokens of one prediction, NormXLogit beside Captum methods."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List

__all__ = ["register"]

_DESCRIPTION = """\
Explain one model output for TEXT: prints the prediction and the tokens coloured by each method
(green pushes towards the explained target, red away from it; each row is divided by its own
max |score|). --model takes a local Hugging Face model folder holding a sequence classifier, a
masked LM (TEXT must contain its mask token once; the token predicted there is explained) or a
causal LM (the next token after TEXT is explained); without it the embedded fine-tuned MiniLM
sentiment classifier is used (prepare it once with `python -m captum_normxlogit.resources prepare`).
A TEXT longer than the model's limit is refused unless --truncate is given (a classifier or
masked LM then keeps the first tokens, a causal LM the last ones, with a warning).
"""

_EPILOG = """\
examples:
  normxlogit explain "a gorgeous , witty , seductive movie ."
  normxlogit explain "a gorgeous , witty , seductive movie ." --methods {example_methods} --html out/explain.html
  normxlogit explain "the plot is thin ." --target POSITIVE --layers --png out/layers.png
  normxlogit explain "The capital of France is" --model ~/.cache/captum_normxlogit/models/smollm2-135m-instruct-*
"""


def register(commands: "argparse._SubParsersAction") -> None:
    from captum_normxlogit._commands.explain.logic import DEFAULT_METHODS
    from captum_normxlogit.methods import IG, METHOD_KEYS, NORMXLOGIT, SALIENCY, methods_help

    epilog = _EPILOG.format(example_methods=",".join((NORMXLOGIT.key, IG.key, SALIENCY.key)))
    explain = commands.add_parser(
        "explain",
        help="explain one text: coloured tokens per method in the terminal, optional HTML page and layer heatmap",
        description=_DESCRIPTION,
        epilog=f"{epilog}\nmethods (--methods, comma-separated, case-insensitive):\n{methods_help()}\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument("text", metavar="TEXT", help="the text to explain (quote it)")
    explain.add_argument(
        "--model",
        metavar="PATH",
        default=None,
        help="local Hugging Face model folder (default: the embedded fine-tuned MiniLM)",
    )
    explain.add_argument(
        "--target",
        metavar="LABEL",
        default=None,
        help="what to explain: a label name from config.id2label (or its index) for a classifier, "
        "one token for a language model (default: the model's own prediction)",
    )
    explain.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated methods, from {', '.join(METHOD_KEYS)} (default: %(default)s)",
    )
    explain.add_argument(
        "--layers", action="store_true", help="also show NormXLogit read on every hidden state (one row per layer)"
    )
    explain.add_argument(
        "--html", metavar="OUT.html", default=None, help="write the comparison as a standalone HTML page"
    )
    explain.add_argument(
        "--png", metavar="OUT.png", default=None, help="write the layers x tokens heatmap of NormXLogit"
    )
    explain.add_argument(
        "--words", action="store_true", help="merge sub-word tokens into words, summing their scores (## / ▁ / Ġ rules)"
    )
    explain.add_argument(
        "--centred",
        action="store_true",
        help="colour each row by its scores minus the row's mean (raw NormXLogit scores are mostly positive, "
        "so raw colours are nearly uniform); raw scores on hover (docs/views.md)",
    )
    explain.add_argument(
        "--ig-steps",
        type=int,
        default=IG.defaults["ig_steps"],
        help="Integrated Gradients steps (default: %(default)s)",
    )
    explain.add_argument(
        "--reduction",
        choices=("sum", "l1", "l2"),
        default="sum",
        help="how gradient methods' hidden dimension becomes one score per token; sum keeps the "
        "sign, l1 is the paper's unsigned choice (default: %(default)s)",
    )
    explain.add_argument(
        "--truncate", action="store_true", help="cut a text longer than the model's limit instead of refusing it"
    )
    explain.add_argument(
        "--timings",
        action="store_true",
        help="show each method's wall time for this one run (noisy; benchmarks/ reports medians)",
    )
    explain.add_argument(
        "--colour",
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="terminal colours; never prints token[+0.42] instead (default: %(default)s)",
    )
    explain.add_argument(
        "--device",
        default=None,
        help="where to run the model: cpu, cuda, cuda:N, mps (default: the GPU when there is one, else cpu)",
    )
    explain.set_defaults(run=_run)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.ig_steps < 1:
        parser.error("--ig-steps must be at least 1")
    from captum_normxlogit._commands.explain.logic import ExplainError
    from captum_normxlogit.visualization.tokens import visible_text

    try:
        return _explain_and_show(args)
    except ExplainError as error:
        # One line, no usage block and no traceback; the message may echo hostile input: made visible.
        print(f"{parser.prog}: error: {visible_text(' '.join(str(error).split()))}", file=sys.stderr)
        return 2


def _gradient_note(keys: List[str], steps: int, reduction: str) -> str:
    from captum_normxlogit.methods import METHODS

    parts = [METHODS[k].describe(ig_steps=steps) for k in keys if METHODS[k].captum is not None]
    if not parts:
        return ""
    return (
        f"Captum methods explain the same function as NormXLogit: {'; '.join(parts)}. Their hidden dimension "
        f"is reduced by {reduction}" + (" (signed)." if reduction == "sum" else " (unsigned).")
    )


def layer_names(n_rows: int) -> List[str]:
    r"""Row names of a layer-wise map: hidden state 0 is the embedding output."""
    return ["0 embeddings"] + [str(i) for i in range(1, n_rows - 1)] + [f"{n_rows - 1} last"]


def _explain_and_show(args: argparse.Namespace) -> int:
    r"""Explain ``args.text``, print the coloured rows, write the HTML page and the PNG if asked."""
    from captum_normxlogit._commands.explain.logic import ExplainError, explain, load_model, parse_methods
    from captum_normxlogit._utils.device import resolve_device
    from captum_normxlogit.visualization import ExplainedExample, make_console, print_example, render_html, write_html
    from captum_normxlogit.visualization.terminal import has_colour, legend
    from captum_normxlogit.visualization.tokens import detect_scheme, visible_text

    keys = parse_methods(args.methods)
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        raise ExplainError(str(error)) from None
    for option, path in (("--html", args.html), ("--png", args.png)):
        if path:  # before the model is loaded: a bad path must not cost a whole computation
            _check_output(option, path)
    out = make_console({"auto": None, "always": True, "never": False}[args.colour])
    err = make_console(None, file=sys.stderr)
    with err.status("loading the model…"):
        loaded = load_model(args.model)
        loaded.model.to(device)  # type: ignore[arg-type]  # transformers types .to() as returning a model
    result = explain(
        loaded,
        args.text,
        target=args.target,
        methods=keys,
        layers=args.layers or args.png is not None,
        ig_steps=args.ig_steps,
        reduction=args.reduction,
        truncate=args.truncate,
        progress=lambda message: err.status(message),
    )
    for note in result.notes:
        err.print(note, style="yellow", soft_wrap=True)

    special = set(loaded.tokenizer.all_special_tokens)
    scheme = detect_scheme(loaded.tokenizer.get_vocab())  # the whole vocabulary shows the scheme for sure
    # One run's wall times are noisy on a busy machine (benchmarks/ has medians), so they are opt-in.
    seconds = result.seconds if args.timings else {}
    examples = [
        ExplainedExample(
            f"{loaded.name}: {result.prediction}",
            result.tokens,
            result.scores,
            seconds,
            f"explaining {result.target} (p={result.target_probability:.3f})",
            result.unsigned,
            centred=args.centred,
        )
    ]
    if args.layers:
        assert result.layer_scores is not None  # explain() fills it when asked for the layers
        names = layer_names(result.layer_scores.shape[0])
        examples.append(
            ExplainedExample(
                f"NormXLogit on every hidden state, target {result.target}",
                result.tokens,
                {f"layer {name}": row for name, row in zip(names, result.layer_scores)},
                subtitle="hidden state 0 is the embedding output; all rows on one scale",
                shared_scale=True,
                centred=args.centred,
            )
        )
    out.print(legend(colour=has_colour(out)), soft_wrap=True)
    out.print()
    for example in examples:
        print_example(example, out, merge_words=args.words, scheme=scheme, special_tokens=special)
    if args.html:
        page = render_html(
            examples,
            title=f"normxlogit explain: {args.text[:80]}",
            note=_gradient_note(keys, args.ig_steps, args.reduction),
            merge_words=args.words,
            scheme=scheme,
            special_tokens=special,
        )
        write_html(args.html, page)  # a write that fails after the check: WriteError, one line (exit 1)
        out.print(f"HTML written to {visible_text(args.html)}", soft_wrap=True)
    if args.png:
        _write_png(args.png, result, scheme, special, args.words)
        out.print(f"layer heatmap written to {visible_text(args.png)}", soft_wrap=True)
    return 0


def _check_output(option: str, path: str) -> None:
    from captum_normxlogit._commands.explain.logic import ExplainError
    from captum_normxlogit._utils.atomic import WriteError, check_writable

    if os.path.isdir(path):  # False, not an error, for a name too long to stat (check_writable says so)
        raise ExplainError(f"{option} {path} is a directory; pass a file name such as explain.{option[2:]}.")
    try:
        check_writable(Path(path))
    except WriteError as error:
        raise ExplainError(f"{option}: {error}") from None


def _write_png(path: str, result, scheme: str, special: set, merge_words: bool) -> None:
    from captum_normxlogit._utils.atomic import atomic_file
    from captum_normxlogit.visualization import display_token, merge_subwords, plot_layer_heatmap

    scores = result.layer_scores
    if merge_words:
        labels, scores = merge_subwords(result.tokens, scores, scheme, special)
    else:
        labels = [display_token(t, scheme, special) for t in result.tokens]
    fig = plot_layer_heatmap(
        scores, labels, layer_labels=layer_names(scores.shape[0]), title=f"NormXLogit per layer, target {result.target}"
    )
    with atomic_file(Path(path)) as tmp:  # a reader never sees half a PNG
        fig.savefig(tmp, format="png", dpi=130)
