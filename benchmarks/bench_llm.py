"""LLMNormXLogit against Captum's LLM attributions on SmolLM2-135M: time, peak memory, rank agreement.

Task: attribute a greedy 20-token generation to a 200-token prompt of real text (held-out
Rotten-Tomatoes sentences), with
  * LLMNormXLogit (one teacher-forced forward pass),
  * Captum's LLMGradientAttribution(LayerIntegratedGradients) on the input embeddings
    (one IG call per output token; n_steps and internal_batch_size below),
  * Captum's LLMAttribution(FeatureAblation) (one ablated generation per prompt token,
    Captum's defaults: token-by-token forward with the KV cache).
The target tokens are generated once, in the parent process, and handed to every method
as ``target=``, so no method pays for generation.

Each method runs in its own fresh process: the model is loaded and one bare forward pass is
run (one-time initialisation paid alike), the peak-RSS mark is reset (/proc/self/clear_refs)
and the first attribution call is timed; peak memory = VmHWM minus the RSS just before the
call. The two Captum methods run once each (they take minutes to tens of minutes on 2 cores);
LLMNormXLogit and the bare forward pass are repeated and the median is reported (memory from
their first call). Wall time is the headline; process CPU time is printed beside it because this
2-core machine is shared and wall time moves with other people's load.

Agreement: Spearman rank correlation between two methods' rows of token_attr (one per output
token; median and range over the rows) and between their seq_attr.

Usage: python benchmarks/bench_llm.py [--prompt-tokens 200] [--new-tokens 20] [--ig-steps 50]
           [--ig-internal-batch 10] [--repeats 5] [--out benchmarks/results/bench_llm_cpu.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import torch

from captum_normxlogit.utils import peak_above, reset_peak

METHODS = ("forward", "normxlogit", "layer_ig", "feature_ablation")
LABELS = {
    "forward": "bare forward over prompt + target (no_grad)",
    "normxlogit": "LLMNormXLogit",
    "layer_ig": "LLMGradientAttribution(LayerIntegratedGradients)",
    "feature_ablation": "LLMAttribution(FeatureAblation)",
}


def _prompt(tokenizer, n_tokens: int) -> str:
    """Held-out review sentences joined and cut to exactly ``n_tokens`` tokens (checked after re-encoding)."""
    from captum_normxlogit.resources import rotten_tomatoes_split

    _, held_out = rotten_tomatoes_split()
    text, i = "", 0
    while len(tokenizer.encode(text)) < n_tokens + 20:
        text += held_out[i][0] + " "
        i += 1
    ids = tokenizer.encode(text)[:n_tokens]
    text = tokenizer.decode(ids)
    if tokenizer.encode(text) != ids:
        raise RuntimeError("the cut prompt does not re-encode to the same tokens; change --prompt-tokens")
    return text


def _child(args) -> None:
    from captum.attr import (
        FeatureAblation,
        LayerIntegratedGradients,
        LLMAttribution,
        LLMGradientAttribution,
        TextTokenInput,
    )

    from captum_normxlogit import LLMNormXLogit, NormXLogit
    from captum_normxlogit.resources import load_smollm2

    torch.set_num_threads(args.threads)
    spec = json.loads(Path(args.spec).read_text())
    lm, tok = load_smollm2()
    inp = TextTokenInput(spec["prompt"], tok)
    target = torch.tensor(spec["target"])
    full = torch.cat([inp.inp_tensor, target[None, :-1]], dim=1)

    def forward():
        with torch.no_grad():
            return lm(full, use_cache=False).logits

    run = {
        "forward": forward,
        "normxlogit": lambda: LLMNormXLogit(NormXLogit(lm), tok).attribute(inp, target=target),
        "layer_ig": lambda: LLMGradientAttribution(LayerIntegratedGradients(lm, lm.model.embed_tokens), tok).attribute(
            inp, target=target, n_steps=args.ig_steps, internal_batch_size=args.ig_internal_batch
        ),
        "feature_ablation": lambda: LLMAttribution(FeatureAblation(lm), tok).attribute(inp, target=target),
    }[args.child]
    forward()  # one-time initialisation, paid before measuring
    before = reset_peak()
    times: List[float] = []
    cpu_times: List[float] = []
    for k in range(args.repeats if args.child in ("forward", "normxlogit") else 1):
        start, cpu = time.perf_counter(), time.process_time()
        output = run()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu)
        if k == 0:
            peak, result = peak_above(before), output
    out = {"method": args.child, "times": times, "cpu_times": cpu_times, "peak_mib": peak}
    if args.child != "forward":
        out["token_attr"] = result.token_attr.tolist()
        out["seq_attr"] = result.seq_attr.tolist()
    Path(args.result).write_text(json.dumps(out))


def _ranks(values: List[float]) -> List[float]:
    """Ranks 1..n, ties get their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: List[float], b: List[float]) -> float:
    """Spearman's rho: Pearson correlation of the (tie-averaged) ranks."""
    ra, rb = torch.tensor(_ranks(a)), torch.tensor(_ranks(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def _agreement(x: Dict, y: Dict) -> str:
    rows = [spearman(p, q) for p, q in zip(x["token_attr"], y["token_attr"])]
    return (
        f"{statistics.median(rows):+.2f} | {min(rows):+.2f} to {max(rows):+.2f} | "
        f"{spearman(x['seq_attr'], y['seq_attr']):+.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompt-tokens", type=int, default=200, help="prompt length in tokens (default: %(default)s)")
    parser.add_argument("--new-tokens", type=int, default=20, help="greedy tokens to explain (default: %(default)s)")
    parser.add_argument("--ig-steps", type=int, default=50, help="LayerIG n_steps (default: %(default)s)")
    parser.add_argument(
        "--ig-internal-batch",
        type=int,
        default=10,
        help="LayerIG internal_batch_size; Captum's default (all steps at once) needs several GiB "
        "more on this shared machine (default: %(default)s)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed runs of the bare forward and of LLMNormXLogit (default: %(default)s)",
    )
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods to run")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) to this file, atomically")
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return 0

    from captum_normxlogit.resources import load_smollm2

    torch.set_num_threads(args.threads)
    lm, tok = load_smollm2()
    prompt = _prompt(tok, args.prompt_tokens)
    ids = torch.tensor([tok.encode(prompt)])
    with torch.no_grad():  # the greedy generation every method explains (no EOS stop, so exactly --new-tokens)
        gen = lm.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=args.new_tokens,
            min_new_tokens=args.new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
        )
    target = gen[0, ids.shape[1] :].tolist()
    del lm
    results: Dict[str, Dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"prompt": prompt, "target": target}))
        for method in args.methods:
            print(f"[{time.strftime('%H:%M:%S')}] {LABELS[method]}: fresh process ...", file=sys.stderr, flush=True)
            result = Path(tmp) / f"{method}.json"
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                "--child",
                method,
                "--spec",
                str(spec),
                "--result",
                str(result),
                "--threads",
                str(args.threads),
                "--repeats",
                str(args.repeats),
                "--ig-steps",
                str(args.ig_steps),
                "--ig-internal-batch",
                str(args.ig_internal_batch),
            ]
            subprocess.run(cmd, check=True)
            results[method] = json.loads(result.read_text())
            print(
                f"[{time.strftime('%H:%M:%S')}]   first call {results[method]['times'][0]:.2f} s, "
                f"peak {results[method]['peak_mib']:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )

    median = {m: statistics.median(r["times"]) for m, r in results.items()}
    cpu = {m: statistics.median(r["cpu_times"]) for m, r in results.items()}
    peak = {m: r["peak_mib"] for m, r in results.items()}
    lines = [
        f"SmolLM2-135M-Instruct (fp32), prompt {args.prompt_tokens} tokens, greedy target {args.new_tokens} tokens: "
        f"{tok.decode(target)!r}",
        f"torch {torch.__version__}, {args.threads} threads; LayerIG n_steps={args.ig_steps}, "
        f"internal_batch_size={args.ig_internal_batch}; times: median of {args.repeats} runs for the bare forward "
        "and LLMNormXLogit, one run for each Captum method; peak memory: first call, fresh process each",
        "",
        "| method | wall time (s) | CPU time (s) | time / LLMNormXLogit | peak memory (MiB) | memory / LLMNormXLogit |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    nx_t, nx_m = median.get("normxlogit"), peak.get("normxlogit")
    for m in args.methods:
        ratio_t = f"{median[m] / nx_t:,.1f}x" if nx_t else "n/a"
        ratio_m = f"{peak[m] / nx_m:,.1f}x" if nx_m else "n/a"
        lines.append(f"| {LABELS[m]} | {median[m]:,.2f} | {cpu[m]:,.2f} | {ratio_t} | {peak[m]:,.0f} | {ratio_m} |")
    ranked = [m for m in ("normxlogit", "layer_ig", "feature_ablation") if m in results]
    if len(ranked) > 1:
        lines += ["", "| Spearman | median over output tokens | range | seq_attr |", "|---|---:|---:|---:|"]
        for i, a in enumerate(ranked):
            for b in ranked[i + 1 :]:
                lines.append(f"| {LABELS[a]} vs {LABELS[b]} | {_agreement(results[a], results[b])} |")
    if nx_t and "layer_ig" in median:
        lines += [
            "",
            f"LayerIG / LLMNormXLogit wall time: {median['layer_ig'] / nx_t:,.0f}x (target >= 100); "
            f"CPU time: {cpu['layer_ig'] / cpu['normxlogit']:,.0f}x",
        ]
    report = "\n".join(lines) + "\n"
    print("\n" + report)
    if args.out:
        from captum_normxlogit.utils import atomic_write_text

        atomic_write_text(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
