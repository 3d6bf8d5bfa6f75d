"""What the dataset run's fingerprint costs: a digest of every weight against one forward pass and a dataset run.

Models: the fine-tuned all-MiniLM-L6-v2 sentiment classifier and SmolLM2-135M
(``make prepare``). For each, interleaved, ``--repeats`` times (medians kept):

- ``digest``: BLAKE2b over every tensor of the state dict in name order (what
  the manifest's ``model.weights_digest`` is, re-stated here in six lines);
- ``fixed``: ``attribute_dataset(..., limit=0)`` into a new folder: everything
  a run does before its first example (weights digest, tokenizer configuration,
  the data file's content digest, the lock, the manifest);
- ``forward``: one plain forward pass (no hooks) on a batch of ``--batch``
  Rotten-Tomatoes sentences;
- ``run``: ``attribute_dataset`` over ``--examples`` sentences (SmolLM2: an
  eighth of them), from a ``.jsonl`` file.

Usage: nice python benchmarks/bench_fingerprint.py [--threads 1] [--repeats 3] [--examples 256] [--batch 32]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch


def digest(model: torch.nn.Module) -> str:
    h = hashlib.blake2b(digest_size=32)
    state = model.state_dict()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{name}:{tuple(state[name].shape)}:{t.dtype}\n".encode())
        h.update(memoryview(t.view(torch.uint8).numpy()))
    return h.hexdigest()


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from captum_normxlogit.dataset import attribute_dataset
    from captum_normxlogit.resources import load_smollm2, rotten_tomatoes_sentences, sentiment_minilm_dir

    texts = [text for text, _ in rotten_tomatoes_sentences()]
    folder = sentiment_minilm_dir()
    minilm = (AutoModelForSequenceClassification.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder))
    models = {"MiniLM (sentiment)": (minilm, args.examples), "SmolLM2-135M": (load_smollm2(), args.examples // 8)}
    work = Path(tempfile.mkdtemp(prefix="bench-fingerprint-"))
    print(f"threads {args.threads}, repeats {args.repeats} (medians), forward batch {args.batch} sentences\n")
    print(
        "| model | parameters | weights MiB | digest s | fixed cost s | forward s | digest / forward "
        "| run s (examples) | fixed / run |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, ((model, tok), n) in models.items():
        data = work / f"{len(os.listdir(work))}.jsonl"
        data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[:n]), encoding="utf-8")
        batch = tok(texts[: args.batch], padding=True, return_tensors="pt")
        times: dict[str, list[float]] = {"digest": [], "fixed": [], "forward": [], "run": []}
        for r in range(args.repeats):
            times["digest"].append(_timed(partial(digest, model)))
            times["fixed"].append(
                _timed(
                    partial(attribute_dataset, model, tok, str(data), work / f"f{label}{r}", limit=0, progress=False)
                )
            )
            with torch.no_grad():
                times["forward"].append(_timed(partial(model, **batch)))
            times["run"].append(
                _timed(partial(attribute_dataset, model, tok, str(data), work / f"r{label}{r}", progress=False))
            )
        med = {k: statistics.median(v) for k, v in times.items()}
        params = sum(p.numel() for p in model.parameters())
        mib = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20
        print(
            f"| {label} | {params / 1e6:.1f} M | {mib:.0f} | {med['digest']:.3f} | {med['fixed']:.3f} | "
            f"{med['forward']:.3f} | {med['digest'] / med['forward']:.2f}x | {med['run']:.1f} ({n}) | "
            f"{100 * med['fixed'] / med['run']:.1f} % |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
