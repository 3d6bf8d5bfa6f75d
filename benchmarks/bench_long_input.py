"""LLMNormXLogit on an 8,192-token prompt of SmolLM2-135M on the CPU: time and peak memory per call.

The prompt is 8,192 tokens of real text (Rotten-Tomatoes sentences, joined and cut, checked after
re-encoding); the target is a short teacher-forced continuation (--target). Every call runs once,
in its own fresh process, after one short warm-up pass: time is wall clock (and process CPU time),
peak memory is the new peak RSS (VmHWM, reset through /proc/self/clear_refs) minus the RSS just
before the call, i.e. what the call needed on top of the loaded model and inputs.

Calls:
  backbone         bare no-grad pass of the decoder stack (model.model): the floor
  llm_final        LLMNormXLogit.attribute: every (target token x prompt token) score, last layer
  llm_layers       LLMNormXLogit.attribute_layers(layers=--layers): only those hidden states kept
  llm_all_layers   LLMNormXLogit.attribute_layers(): all L + 1 hidden states
  hf_logits        the full model's no-grad forward: (T, vocab) logits, what LLMNormXLogit avoids
  hf_hidden        the same with output_hidden_states=True: (T, vocab) logits and every layer kept

Usage: python benchmarks/bench_long_input.py [--tokens 8192] [--target " In short, the film is"]
           [--layers 10 20 30] [--calls ...] [--out benchmarks/results/long_input_cpu.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict

import torch

from captum_normxlogit.utils import peak_above, reset_peak

CALLS = ("backbone", "llm_final", "llm_layers", "llm_all_layers", "hf_logits", "hf_hidden")


def _prompt(tokenizer, n_tokens: int) -> str:
    from captum_normxlogit.resources import rotten_tomatoes_split

    train, held_out = rotten_tomatoes_split()
    sentences = [s for s, _ in held_out] + [s for s, _ in train]
    parts, count, i = [], 0, 0
    while count < n_tokens + 50:
        parts.append(sentences[i])
        count += len(tokenizer.encode(sentences[i] + " ", add_special_tokens=False))
        i += 1
    ids = tokenizer.encode(" ".join(parts))[:n_tokens]
    text = tokenizer.decode(ids)
    if tokenizer.encode(text) != ids:
        raise RuntimeError("the cut prompt does not re-encode to the same tokens; change --tokens")
    return text


def _child(args) -> None:
    from captum.attr import TextTokenInput

    from captum_normxlogit import LLMNormXLogit, NormXLogit
    from captum_normxlogit.resources import load_smollm2

    torch.set_num_threads(args.threads)
    lm, tok = load_smollm2()
    prompt = Path(args.spec).read_text()
    inp = TextTokenInput(prompt, tok)
    ids = inp.inp_tensor
    llm = LLMNormXLogit(NormXLogit(lm), tok)
    summary: dict[str, object] = {}

    def run():
        with torch.no_grad():
            if args.child == "backbone":
                return lm.model(ids, use_cache=False).last_hidden_state
            if args.child == "hf_logits":
                return lm(ids, use_cache=False).logits
            if args.child == "hf_hidden":
                return lm(ids, use_cache=False, output_hidden_states=True).logits
        if args.child == "llm_final":
            res = llm.attribute(inp, target=args.target)
            summary.update(
                output_tokens=res.output_tokens,
                output_probs=res.output_probs.tolist(),
                top=[res.input_tokens[i] for i in res.seq_attr.topk(5).indices.tolist()],
            )
            return res
        layers = args.layers if args.child == "llm_layers" else None
        return llm.attribute_layers(inp, target=args.target, layers=layers)

    with torch.no_grad():
        lm(ids[:, :16], use_cache=False)  # one-time initialisation, paid before measuring
    before = reset_peak()
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out = {
        "call": args.child,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_mib": peak_above(before),
        "tokens": ids.shape[1],
        **summary,
    }
    Path(args.result).write_text(json.dumps(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=8192, help="prompt length in tokens (default: %(default)s)")
    parser.add_argument(
        "--target",
        default=" In short, the film is",
        help="teacher-forced continuation to explain (default: %(default)r)",
    )
    parser.add_argument(
        "--layers",
        type=int,
        nargs="+",
        default=[10, 20, 30],
        help="hidden states for llm_layers (default: %(default)s)",
    )
    parser.add_argument("--calls", nargs="+", choices=CALLS, default=list(CALLS), help="calls to measure")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) to this file, atomically")
    parser.add_argument("--child", choices=CALLS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return 0

    from transformers import AutoTokenizer

    from captum_normxlogit.resources import load_smollm2, smollm2_dir

    load_smollm2()  # converts the weights once if they are not cached yet
    tok = AutoTokenizer.from_pretrained(smollm2_dir(), local_files_only=True)
    n_target = len(tok.encode(args.target, add_special_tokens=False))
    results: Dict[str, Dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "prompt.txt"
        spec.write_text(_prompt(tok, args.tokens))
        for call in args.calls:
            print(f"[{time.strftime('%H:%M:%S')}] {call}: fresh process ...", file=sys.stderr, flush=True)
            result = Path(tmp) / f"{call}.json"
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                "--child",
                call,
                "--spec",
                str(spec),
                "--result",
                str(result),
                "--threads",
                str(args.threads),
                "--target",
                args.target,
                "--layers",
                *map(str, args.layers),
            ]
            subprocess.run(cmd, check=True)
            results[call] = json.loads(result.read_text())
            r = results[call]
            print(
                f"[{time.strftime('%H:%M:%S')}]   {r['wall_s']:.1f} s, peak {r['peak_mib']:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )

    labels = {
        "backbone": "bare decoder pass (model.model, no_grad)",
        "llm_final": f"LLMNormXLogit.attribute ({n_target} target tokens x {args.tokens} prompt tokens)",
        "llm_layers": f"LLMNormXLogit.attribute_layers(layers={args.layers})",
        "llm_all_layers": "LLMNormXLogit.attribute_layers() (all 31 hidden states)",
        "hf_logits": "HF full forward, (T, vocab) logits",
        "hf_hidden": "HF full forward, output_hidden_states=True",
    }
    base = results.get("backbone")
    lines = [
        f"SmolLM2-135M-Instruct (fp32), prompt {args.tokens} tokens of real text, target {args.target!r} "
        f"({n_target} tokens, teacher-forced); torch {torch.__version__}, {args.threads} threads; "
        "one run per call, each in a fresh process; peak memory above the loaded model and inputs",
        "",
        "| call | wall time (s) | CPU time (s) | time / bare pass | peak memory (MiB) | memory / bare pass |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for call in args.calls:
        r = results[call]
        t_ratio = f"{r['wall_s'] / base['wall_s']:.2f}x" if base else "n/a"
        m_ratio = f"{r['peak_mib'] / base['peak_mib']:.2f}x" if base else "n/a"
        lines.append(
            f"| {labels[call]} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {t_ratio} | {r['peak_mib']:,.0f} | {m_ratio} |"
        )
    if "llm_final" in results:
        r = results["llm_final"]
        lines += [
            "",
            f"Output tokens {r['output_tokens']}, probabilities "
            f"{[round(p, 3) for p in r['output_probs']]}; top-5 prompt tokens by seq_attr: {r['top']}",
        ]
    report = "\n".join(lines) + "\n"
    print("\n" + report)
    if args.out:
        from captum_normxlogit.utils import atomic_write_text

        atomic_write_text(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
