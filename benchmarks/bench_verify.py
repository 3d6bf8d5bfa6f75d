"""The verified summary's cost as a multiple of the attribution pass, in one run; LayerIG's time on the same rows.

Model: the fine-tuned all-MiniLM-L6-v2 sentiment classifier (``captum_normxlogit.resources``).
Data: the 4,000 Rotten-Tomatoes sentences, each explained for its prediction.

* ``attribute_dataset`` end to end (tokenization, NormXLogit, Parquet shards): the baseline;
* ``summarize`` of the rows it wrote;
* ``verify_summary`` at the defaults (``DEFAULT_TOP_K`` candidates per class, at most
  ``DEFAULT_MAX_EXAMPLES`` examples per word), no cache;
* ``LayerIntegratedGradients`` (16 steps, pad baseline, the package's ``build_method("layer_ig")``)
  on the first ``--ig-rows`` sentences, extrapolated linearly to all rows (said so in the table).

The three steps of the NormXLogit pipeline run ``--repeats`` times, interleaved; the table gives
medians and the ratios of the medians. It also writes the verified summary (Markdown, CSV, PNG,
HTML) of the last repeat under ``--report-dir``.

Usage: OMP_NUM_THREADS=1 nice python benchmarks/bench_verify.py [--repeats 1] [--markdown FILE] [--report-dir DIR]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--ig-rows", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--max-examples", type=int, default=None)
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--report-dir", default=None)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")

    from captum_normxlogit import NormXLogit
    from captum_normxlogit.dataset import attribute_dataset, summarize
    from captum_normxlogit.dataset.method_frame import method_frame
    from captum_normxlogit.dataset.report import plot_top, summary_markdown, write_html_report
    from captum_normxlogit.dataset.verify import DEFAULT_MAX_EXAMPLES, DEFAULT_TOP_K, verify_summary
    from captum_normxlogit.methods import build_method
    from captum_normxlogit.resources import load_sentiment_minilm, rotten_tomatoes_sentences

    top_k = args.top_k or DEFAULT_TOP_K
    max_examples = args.max_examples or DEFAULT_MAX_EXAMPLES
    model, tokenizer = load_sentiment_minilm(train_if_missing=False, progress=False)
    sentences = rotten_tomatoes_sentences()[: args.rows]
    texts = [text for text, _ in sentences]
    rows = [{"text": t, "gold": ["NEGATIVE", "POSITIVE"][y]} for t, y in sentences]
    times: dict[str, list[float]] = {"attribute": [], "summarize": [], "verify": []}
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="verify-bench-") as tmp:
            started = time.perf_counter()
            handle = attribute_dataset(model, tokenizer, rows, Path(tmp) / "rt", label_column="gold", progress=False)
            times["attribute"].append(time.perf_counter() - started)
            started = time.perf_counter()
            summary = summarize(handle.to_pandas(), special_tokens=tokenizer.all_special_tokens)
            times["summarize"].append(time.perf_counter() - started)
            started = time.perf_counter()
            verified = verify_summary(summary, model, tokenizer, top_k=top_k, max_examples=max_examples)
            times["verify"].append(time.perf_counter() - started)
        print(repeat, {k: round(v[-1], 2) for k, v in times.items()}, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}  # --repeats >= 1: the loop set verified

    nx = NormXLogit(model)
    specials = (tokenizer.cls_token_id, tokenizer.sep_token_id)
    lig = build_method(
        "layer_ig", nx, pad_token_id=tokenizer.pad_token_id, special_token_ids=specials, reduction="sum", ig_steps=16
    )
    enc = tokenizer(texts[: args.ig_rows])
    ids = [list(map(int, r)) for r in enc["input_ids"]]
    started = time.perf_counter()
    id2label = {int(k): v for k, v in (model.config.id2label or {}).items()}
    method_frame(
        lig,
        model,
        ids,
        [list(tokenizer.convert_ids_to_tokens(r)) for r in ids],
        pad_token_id=tokenizer.pad_token_id,
        id2label=id2label,
        batch_size=32,
    )
    ig_seconds = (time.perf_counter() - started) * len(texts) / len(ids)

    n_measured = int(verified.effects["n"].sum())
    lines = [
        f"# Verified summary: cost against the attribution pass ({len(texts):,} Rotten-Tomatoes sentences, MiniLM)",
        "",
        f"`{' '.join(['python', 'benchmarks/bench_verify.py'] + [a for a in __import__('sys').argv[1:]])}`, "
        f"torch threads {torch.get_num_threads()}, {args.repeats} repeat(s), medians. K = {top_k} candidates per "
        f"class, at most {max_examples} examples per word: {n_measured:,} occluded examples measured.",
        "",
        "| step | seconds | × attribution pass |",
        "|---|---:|---:|",
    ]
    for name, label in (
        ("attribute", "attribute_dataset (NormXLogit, Parquet)"),
        ("summarize", "summarize"),
        ("verify", "verify_summary (occlusion of the top K)"),
    ):
        lines.append(f"| {label} | {med[name]:.1f} | {med[name] / med['attribute']:.2f} |")
    whole = med["summarize"] + med["verify"]
    lines.append(f"| summarize + verify (the verified summary) | {whole:.1f} | {whole / med['attribute']:.2f} |")
    lines.append(
        f"| LayerIG, 16 steps (measured on {len(ids)} rows, extrapolated to {len(texts):,}) | "
        f"{ig_seconds:.0f} | {ig_seconds / med['attribute']:.1f} |"
    )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.report_dir:
        out = Path(args.report_dir)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "rt_verified.pkl", "wb") as fh:  # to redraw the views without a rerun
            pickle.dump(verified, fh)
        (out / "rt_verified.md").write_text(summary_markdown(verified, 20))
        verified.to_csv(str(out / "rt_verified.csv"))
        plot_top(verified, out / "rt_verified.png", n=20)
        facts = {
            "model": "fine-tuned all-MiniLM-L6-v2 sentiment classifier (captum_normxlogit.resources)",
            "explained": "each sentence for its prediction",
            "time": f"attribution {med['attribute']:.0f} s, summary {med['summarize']:.0f} s, "
            f"verification {med['verify']:.0f} s (1 CPU thread)",
        }
        title = f"Rotten Tomatoes, {len(texts):,} sentences, MiniLM: verified summary"
        write_html_report(verified, out / "rt_verified.html", n=20, title=title, settings=facts)
        write_html_report(
            verified, out / "rt_verified_raw.html", n=20, title=title + " (raw colours)", settings=facts, centred=False
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
