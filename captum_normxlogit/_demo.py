r"""The main job on the embedded defaults: NormXLogit beside Integrated Gradients on real models."""
from __future__ import annotations

import sys
import time
from typing import Callable, List, Optional, Tuple

import torch
from captum.attr import LayerIntegratedGradients
from torch import Tensor

from captum_normxlogit import NormXLogit
from captum_normxlogit.visualization.html import ExplainedExample, render_html, write_html
from captum_normxlogit.visualization.terminal import render_terminal

__all__ = ["run_demo"]

SHOWCASE = "a gorgeous , witty , seductive movie ."
LM_PROMPT = "The capital of France is"


def _timed(fn: Callable[[], Tensor]) -> Tuple[Tensor, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _print(line: str = "") -> None:
    print(line, flush=True)


def _show(example: ExplainedExample, colour: bool) -> None:
    _print(example.title)
    width = max(len(m) for m in example.scores)
    for method, scores in example.scores.items():
        seconds = example.seconds.get(method)
        timing = f"  ({seconds * 1000:.0f} ms)" if seconds is not None else ""
        _print(render_terminal(example.tokens, scores, label=f"  {method:<{width}}  ", colour=colour) + timing)
    _print()


def _sentiment(n_sentences: int, ig_steps: int, colour: bool) -> List[ExplainedExample]:
    from captum_normxlogit.resources import load_sentiment_minilm, rotten_tomatoes_split

    model, tokenizer = load_sentiment_minilm(progress=True)
    _, held_out = rotten_tomatoes_split()
    picked = [(SHOWCASE, None)] + list(held_out[: max(n_sentences - 1, 0)])
    texts = [t for t, _ in picked]
    enc = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    ids, mask, types = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]

    nx = NormXLogit(model)
    with torch.no_grad():  # the prediction; also warms the model up before anything is timed
        probs = nx.forward_func(ids, mask, types).softmax(-1)
    predicted = probs.argmax(-1)
    nxl, nx_seconds = _timed(lambda: nx.attribute(ids, additional_forward_args=(mask, types)))

    # IG baseline: every real token -> [PAD], keeping [CLS]/[SEP] (Captum's BERT tutorial convention).
    specials = torch.stack(
        [torch.tensor(tokenizer.get_special_tokens_mask(row, already_has_special_tokens=True)) for row in ids.tolist()]
    ).bool()
    baseline = torch.where(specials, ids, torch.full_like(ids, tokenizer.pad_token_id))
    lig = LayerIntegratedGradients(nx.forward_func, model.bert.embeddings)
    ig, ig_seconds = _timed(
        lambda: lig.attribute(
            ids,
            baselines=baseline,
            target=predicted,
            additional_forward_args=(mask, types),
            n_steps=ig_steps,
            internal_batch_size=ids.shape[0] * ig_steps,
        ).sum(-1)
    )
    labels = model.config.id2label
    examples = []
    for b, (text, gold) in enumerate(picked):
        n = int(mask[b].sum())
        tokens = tokenizer.convert_ids_to_tokens(ids[b, :n].tolist())
        gold_text = "" if gold is None else f", gold {labels[gold]}"
        title = f"MiniLM sentiment: {labels[int(predicted[b])]} (p={float(probs[b, predicted[b]]):.3f}{gold_text})"
        examples.append(
            ExplainedExample(
                title,
                tokens,
                {"NormXLogit": nxl[b, :n], f"LayerIG ({ig_steps} steps)": ig[b, :n]},
                {"NormXLogit": nx_seconds / len(picked), f"LayerIG ({ig_steps} steps)": ig_seconds / len(picked)},
            )
        )
    for example in examples:
        _show(example, colour)
    _print(
        f"  batch of {len(picked)}: NormXLogit {nx_seconds * 1000:.0f} ms, "
        f"LayerIntegratedGradients {ig_seconds * 1000:.0f} ms ({ig_seconds / max(nx_seconds, 1e-9):.0f}x)\n"
    )
    return examples


def _next_token(ig_steps: int, colour: bool) -> List[ExplainedExample]:
    from captum_normxlogit.resources import load_smollm2

    model, tokenizer = load_smollm2()
    ids = tokenizer(LM_PROMPT, return_tensors="pt")["input_ids"]
    nx = NormXLogit(model)
    with torch.no_grad():  # the prediction; also warms the model up before anything is timed
        probs = nx.forward_func(ids).softmax(-1)
    token = int(probs.argmax(-1))
    scores, nx_seconds = _timed(lambda: nx.attribute(ids))
    baseline = torch.full_like(ids, tokenizer.pad_token_id)
    lig = LayerIntegratedGradients(nx.forward_func, model.get_input_embeddings())
    ig, ig_seconds = _timed(
        lambda: lig.attribute(ids, baselines=baseline, target=token, n_steps=ig_steps, internal_batch_size=ig_steps).sum(-1)
    )
    tokens = [tokenizer.decode([i]) for i in ids[0].tolist()]
    title = f"SmolLM2-135M next token after {LM_PROMPT!r}: {tokenizer.decode([token])!r} (p={float(probs[0, token]):.3f})"
    example = ExplainedExample(
        title,
        tokens,
        {"NormXLogit": scores[0], f"LayerIG ({ig_steps} steps)": ig[0]},
        {"NormXLogit": nx_seconds, f"LayerIG ({ig_steps} steps)": ig_seconds},
    )
    _show(example, colour)
    return [example]


def run_demo(html_path: str, n_sentences: int = 4, ig_steps: int = 50, llm: bool = True, colour: Optional[bool] = None) -> int:
    r"""Explain real sentences with the fine-tuned MiniLM and one SmolLM2 prediction.

    Prints coloured tokens (green = towards the explained label, red = away;
    each row scaled by its max |score|) and writes the same as an HTML page.

    Returns:
        int: Process exit code (0).
    """
    colour = sys.stdout.isatty() if colour is None else colour
    _print("NormXLogit beside Integrated Gradients (each row scaled by its own max |score|)\n")
    examples: List[ExplainedExample] = _sentiment(n_sentences, ig_steps, colour)
    if llm:
        examples += _next_token(ig_steps, colour)
    page = render_html(
        examples,
        title="NormXLogit beside Integrated Gradients",
        note=(
            "Green pushes towards the explained label, red away from it; each row is divided by its "
            "own max |score|; hover a token for its raw score. NormXLogit: one forward pass. "
            "LayerIG: Captum's LayerIntegratedGradients on the embedding layer, summed over the hidden size."
        ),
    )
    write_html(html_path, page)
    _print(f"HTML written to {html_path}")
    return 0
