r"""The main job on the embedded defaults: NormXLogit beside Layer Integrated Gradients on real models."""

from __future__ import annotations

import time
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor

from captum_normxlogit import NormXLogit
from captum_normxlogit.methods import LAYER_IG, NORMXLOGIT, build_method
from captum_normxlogit.visualization import ExplainedExample, make_console, print_example, render_html, write_html
from captum_normxlogit.visualization.terminal import has_colour, legend

__all__ = ["run_demo"]

SHOWCASE = "a gorgeous , witty , seductive movie ."
LM_PROMPT = "The capital of France is"


def _timed(fn: Callable[[], Tensor]) -> Tuple[Tensor, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _layer_ig(nx: NormXLogit, tokenizer, ig_steps: int, batch: int):
    r"""Captum's LayerIntegratedGradients from the shared registry, signed (hidden size summed).

    Baseline: every real token -> the pad token, special tokens kept (Captum's BERT tutorial).
    """
    method = build_method(
        LAYER_IG.key,
        nx,
        pad_token_id=tokenizer.pad_token_id,
        special_token_ids=tokenizer.all_special_ids,
        ig_steps=ig_steps,
        internal_batch_size=batch * ig_steps,
        reduction="sum",
    )
    method.name = f"{LAYER_IG.short_name} ({ig_steps} steps)"
    return method


def _sentiment(n_sentences: int, ig_steps: int, console) -> List[ExplainedExample]:
    from captum_normxlogit.resources import load_sentiment_minilm, rotten_tomatoes_split

    model, tokenizer = load_sentiment_minilm(progress=True)
    _, held_out = rotten_tomatoes_split()
    picked = [(SHOWCASE, None)] + list(held_out[: max(n_sentences - 1, 0)])
    texts = [t for t, _ in picked]
    enc = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]

    nx = NormXLogit(model)
    with torch.no_grad():  # the prediction; also warms the model up before anything is timed
        probs = nx.forward_func(ids, mask).softmax(-1)
    predicted = probs.argmax(-1)
    normxlogit = build_method(NORMXLOGIT.key, nx)
    lig = _layer_ig(nx, tokenizer, ig_steps, len(picked))
    nxl, nx_seconds = _timed(lambda: normxlogit(ids, mask, predicted))
    ig, ig_seconds = _timed(lambda: lig(ids, mask, predicted))
    labels = {int(k): str(v) for k, v in (model.config.id2label or {}).items()}
    examples = []
    for b, (_text, gold) in enumerate(picked):
        n = int(mask[b].sum())
        tokens = list(tokenizer.convert_ids_to_tokens(ids[b, :n].tolist()))
        gold_text = "" if gold is None else f", gold {labels[gold]}"
        title = f"MiniLM sentiment: {labels[int(predicted[b])]} (p={float(probs[b, predicted[b]]):.3f}{gold_text})"
        examples.append(
            ExplainedExample(
                title,
                tokens,
                {normxlogit.name: nxl[b, :n], lig.name: ig[b, :n]},
                {normxlogit.name: nx_seconds / len(picked), lig.name: ig_seconds / len(picked)},
            )
        )
    special = set(tokenizer.all_special_tokens)
    for example in examples:
        print_example(example, console, scheme="wordpiece", special_tokens=special)
    console.print(
        f"  batch of {len(picked)}: {normxlogit.name} {nx_seconds * 1000:.0f} ms, "
        f"{LAYER_IG.name} {ig_seconds * 1000:.0f} ms ({ig_seconds / max(nx_seconds, 1e-9):.0f}x)\n"
    )
    return examples


def _next_token(ig_steps: int, console) -> List[ExplainedExample]:
    from captum_normxlogit.resources import load_smollm2

    model, tokenizer = load_smollm2()
    ids = tokenizer(LM_PROMPT, return_tensors="pt")["input_ids"]
    mask = torch.ones_like(ids)
    nx = NormXLogit(model)
    with torch.no_grad():  # the prediction; also warms the model up before anything is timed
        probs = nx.forward_func(ids).softmax(-1)
    token = probs.argmax(-1)
    normxlogit = build_method(NORMXLOGIT.key, nx)
    lig = _layer_ig(nx, tokenizer, ig_steps, 1)
    scores, nx_seconds = _timed(lambda: normxlogit(ids, mask, token))
    ig, ig_seconds = _timed(lambda: lig(ids, mask, token))
    tokens = list(tokenizer.convert_ids_to_tokens(ids[0].tolist()))
    word = tokenizer.decode([int(token)])
    title = f"SmolLM2-135M next token after {LM_PROMPT!r}: {word!r} (p={float(probs[0, token]):.3f})"
    example = ExplainedExample(
        title,
        tokens,
        {normxlogit.name: scores[0], lig.name: ig[0]},
        {normxlogit.name: nx_seconds, lig.name: ig_seconds},
    )
    print_example(example, console, scheme="bytelevel", special_tokens=set(tokenizer.all_special_tokens))
    return [example]


def run_demo(
    html_path: str,
    n_sentences: int = 4,
    ig_steps: int = LAYER_IG.defaults["ig_steps"],
    llm: bool = True,
    colour: Optional[bool] = None,
) -> int:
    r"""Explain real sentences with the fine-tuned MiniLM and one SmolLM2 prediction.

    Prints coloured tokens (green = towards the explained label, red = away;
    each row scaled by its max |score|) and writes the same as an HTML page.
    Both methods come from :func:`captum_normxlogit.methods.build_method`:
    NormXLogit, and LayerIntegratedGradients on the input embedding table
    (baseline: real tokens → pad, special tokens kept; hidden size summed, so
    signed).

    Args:
        html_path (str): Where to write the page.
        n_sentences (int, optional): Sentences to explain. Default: 4
        ig_steps (int, optional): LayerIntegratedGradients steps. Default: 50
        llm (bool, optional): Add the SmolLM2 next-token example. Default: True
        colour (bool, optional): Terminal colours; None detects a terminal. Default: None

    Returns:
        int: Process exit code (0).
    """
    console = make_console(colour)
    console.print(f"{NORMXLOGIT.name} beside {LAYER_IG.name}\n")
    console.print(legend(colour=has_colour(console)), soft_wrap=True)
    console.print()
    examples: List[ExplainedExample] = _sentiment(n_sentences, ig_steps, console)
    if llm:
        examples += _next_token(ig_steps, console)
    page = render_html(
        examples,
        title=f"{NORMXLOGIT.name} beside {LAYER_IG.name}",
        note=(
            f"{NORMXLOGIT.name}: one forward pass. {LAYER_IG.short_name}: Captum's "
            f"{LAYER_IG.describe(ig_steps=ig_steps)}, special tokens kept, summed over the hidden size."
        ),
    )
    write_html(html_path, page)
    console.print(f"HTML written to {html_path}")
    return 0
