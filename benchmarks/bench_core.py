"""NormXLogit's cost against a bare forward pass and Captum's gradient methods, in one run.

Model: the fine-tuned all-MiniLM-L6-v2 sentiment classifier (``make prepare``).
Inputs: 16 rows x 128 tokens of real held-out Rotten-Tomatoes text (sentences
joined until 128 tokens, so no padding), target = the predicted class.

Time: each method runs ``--repeats`` times, interleaved round by round so load
on this noisy machine hits every method alike; the table gives medians and
ratios to the bare forward pass measured in the same run.

Peak memory: each method runs once in a fresh subprocess, after one bare
forward pass (so one-time library initialisation is excluded alike); the
process's peak-RSS mark is then reset (``/proc/self/clear_refs``) and the
figure is the new peak (``VmHWM``) minus the RSS just before the call: what
the call itself needed on top of the model and inputs.

Usage: python benchmarks/bench_core.py [--repeats 15] [--ig-steps 50] [--ig-internal-batch 128]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List

import torch

from captum_normxlogit.utils import peak_above, reset_peak

BATCH, SEQ = 16, 128
METHODS = ("forward", "normxlogit", "normxlogit_all_layers", "ig", "saliency", "input_x_gradient")
LABELS = {
    "forward": "bare forward (no_grad)",
    "normxlogit": "NormXLogit",
    "normxlogit_all_layers": "NormXLogit, all 7 layers",
    "ig": "IntegratedGradients",
    "saliency": "Saliency",
    "input_x_gradient": "InputXGradient",
}


def _inputs(tokenizer):
    from captum_normxlogit.resources import rotten_tomatoes_split

    _, held_out = rotten_tomatoes_split()
    texts: list[str] = []
    row: list[str] = []
    i = 0
    while len(texts) < BATCH:
        row.append(held_out[i][0])
        i += 1
        if len(tokenizer(" ".join(row))["input_ids"]) >= SEQ:
            texts.append(" ".join(row))
            row = []
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=SEQ, return_tensors="pt")
    assert enc["attention_mask"].all(), "every row should be full length"
    return enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]


def _methods(args) -> Dict[str, Callable[[], object]]:
    from captum.attr import InputXGradient, IntegratedGradients, Saliency

    from captum_normxlogit import NormXLogit
    from captum_normxlogit.resources import load_sentiment_minilm

    model, tokenizer = load_sentiment_minilm(train_if_missing=False, progress=False)
    ids, mask, types = _inputs(tokenizer)
    nx = NormXLogit(model)
    with torch.no_grad():
        target = model(ids, attention_mask=mask, token_type_ids=types).logits.argmax(-1)
    embeds = model.get_input_embeddings()(ids).detach()
    extra = (mask, types)

    def forward():
        with torch.no_grad():
            return model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits

    def gradient(method):
        return lambda: method.attribute(embeds.clone().requires_grad_(), target=target, additional_forward_args=extra)

    return {
        "forward": forward,
        "normxlogit": lambda: nx.attribute(ids, target=target, additional_forward_args=extra),
        "normxlogit_all_layers": lambda: nx.attribute_all_layers(ids, target=target, additional_forward_args=extra),
        "ig": lambda: IntegratedGradients(nx.forward_func).attribute(
            embeds,
            target=target,
            additional_forward_args=extra,
            n_steps=args.ig_steps,
            internal_batch_size=args.ig_internal_batch,
        ),
        "saliency": gradient(Saliency(nx.forward_func)),
        "input_x_gradient": gradient(InputXGradient(nx.forward_func)),
    }


def _memory_child(args) -> None:
    torch.set_num_threads(args.threads)
    methods = _methods(args)
    methods["forward"]()  # one-time initialisation, paid before measuring any method
    before = reset_peak()
    methods[args.memory_child]()
    print(json.dumps({"method": args.memory_child, "delta_mib": peak_above(before)}))


def _peak_memory(args, method: str) -> float:
    """Median over ``--memory-repeats`` fresh processes: RSS moves by a few MiB between runs."""
    cmd = [
        sys.executable,
        __file__,
        "--memory-child",
        method,
        "--threads",
        str(args.threads),
        "--ig-steps",
        str(args.ig_steps),
        "--ig-internal-batch",
        str(args.ig_internal_batch),
    ]
    runs = []
    for _ in range(args.memory_repeats):
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        runs.append(json.loads(out)["delta_mib"])
    return statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per cheap method (default: %(default)s)")
    parser.add_argument("--ig-repeats", type=int, default=3, help="timed runs of IG (default: %(default)s)")
    parser.add_argument("--ig-steps", type=int, default=50)
    parser.add_argument(
        "--ig-internal-batch",
        type=int,
        default=128,
        help="IG internal_batch_size (default: %(default)s of the 16 x n_steps rows)",
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--memory-repeats",
        type=int,
        default=3,
        help="fresh processes per method for peak memory; the median is reported (default: %(default)s)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the per-method memory subprocesses")
    parser.add_argument("--memory-child", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        _memory_child(args)
        return 0

    torch.set_num_threads(args.threads)
    methods = _methods(args)
    for fn in methods.values():  # warm-up: first-call allocations and lazy init
        if fn is not methods["ig"]:
            fn()
    times: Dict[str, List[float]] = {m: [] for m in METHODS}
    for round_ in range(max(args.repeats, args.ig_repeats)):
        for name, fn in methods.items():
            if round_ >= (args.ig_repeats if name == "ig" else args.repeats):
                continue
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
        print(f"round {round_ + 1} done", file=sys.stderr, flush=True)

    memory = {} if args.no_memory else {m: _peak_memory(args, m) for m in METHODS}
    median = {m: statistics.median(t) for m, t in times.items()}
    print(
        f"\nMiniLM-L6 (fine-tuned), batch {BATCH} x {SEQ} tokens, torch {torch.__version__}, "
        f"{args.threads} threads; IG n_steps={args.ig_steps}, internal_batch_size={args.ig_internal_batch}; "
        f"time: medians of {args.repeats} runs ({args.ig_repeats} for IG); "
        f"memory: medians of {args.memory_repeats} processes\n"
    )
    print(
        "| method | median time (s) | time / bare forward | time / NormXLogit "
        "| peak memory (MiB) | memory / NormXLogit |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for m in METHODS:
        mem = memory.get(m)
        mem_cells = f"{mem:.0f} | {mem / memory['normxlogit']:.1f}x" if mem is not None else "n/a | n/a"
        print(
            f"| {LABELS[m]} | {median[m]:.3f} | {median[m] / median['forward']:.3f}x | "
            f"{median[m] / median['normxlogit']:.1f}x | {mem_cells} |"
        )
    print(f"\nNormXLogit / bare forward: {median['normxlogit'] / median['forward']:.3f}x (target <= 1.10)")
    print(f"all layers / bare forward: {median['normxlogit_all_layers'] / median['forward']:.3f}x (target <= 1.25)")
    print(f"IG / NormXLogit time: {median['ig'] / median['normxlogit']:.0f}x (target >= 100)")
    if memory:
        print(
            f"IG / NormXLogit peak memory: {memory['ig'] / memory['normxlogit']:.0f}x (target >= 50); "
            f"IG / bare forward: {memory['ig'] / memory['forward']:.0f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
