"""How uniform the raw colours are, and what centring changes: NormXLogit on Rotten-Tomatoes sentences (MiniLM).

For each sentence (explained for its prediction), words merged as the views merge them, special tokens
left out: the share of sentences whose every word scores above 0 (all green in a raw view), the share
of words with a positive raw score and with a positive centred score (score minus the sentence's mean
word score: ``ExplainedExample(centred=True)``, ``explain --centred``, the summary page), and the share
of words whose colour keeps its sign when centred.

Usage: OMP_NUM_THREADS=1 nice python benchmarks/views_centred.py [--rows 2000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    from captum_normxlogit.dataset import attribute_dataset
    from captum_normxlogit.resources import load_sentiment_minilm, rotten_tomatoes_sentences
    from captum_normxlogit.visualization.tokens import detect_scheme, merge_subwords

    model, tokenizer = load_sentiment_minilm(train_if_missing=False, progress=False)
    sentences = rotten_tomatoes_sentences()
    half = args.rows // 2  # both classes: the first and the last sentences of the file
    texts = [t for t, _ in sentences[:half] + sentences[-(args.rows - half) :]]
    special = set(tokenizer.all_special_tokens)
    scheme = detect_scheme(tokenizer.get_vocab())
    all_positive, raw_pos, centred_pos, same, words = 0, 0, 0, 0, 0
    with tempfile.TemporaryDirectory(prefix="verify-views-") as tmp:
        frame = attribute_dataset(model, tokenizer, texts, Path(tmp) / "rt", progress=False).to_pandas()
    for tokens, scores in zip(frame["tokens"], frame["scores"]):
        shown, merged = merge_subwords(list(tokens), torch.tensor(np.asarray(scores)), scheme, special)
        raw = np.array([float(v) for w, v in zip(shown, merged) if w not in special])
        centred = raw - raw.mean()
        all_positive += bool((raw > 0).all())
        raw_pos += int((raw > 0).sum())
        centred_pos += int((centred > 0).sum())
        same += int((np.sign(raw) == np.sign(centred)).sum())
        words += raw.size
    n = len(frame)
    print(f"{n} sentences, {words} words (special tokens left out)")
    print(f"sentences with every word > 0 (raw view all green): {all_positive / n:.3f}")
    print(f"words > 0: raw {raw_pos / words:.3f}, centred {centred_pos / words:.3f}")
    print(f"words whose colour keeps its sign when centred: {same / words:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
