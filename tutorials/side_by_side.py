"""Tutorial: NormXLogit beside Integrated Gradients, and its layer-wise view, on a real classifier.

Run after `make demo` / `make test` (or `python -m captum_normxlogit.resources prepare`):

    .venv/bin/python tutorials/side_by_side.py [--out DIR]

It prints per-token scores of both methods with their rank agreement, and saves a
layers x tokens heatmap of NormXLogit (hidden states 0..6 of MiniLM) as a PNG.
"""
import argparse
import os

import torch
from captum.attr import LayerIntegratedGradients

from captum_normxlogit import NormXLogit, reduce_hidden
from captum_normxlogit.resources import load_sentiment_minilm
from captum_normxlogit.visualization import plot_layer_heatmap


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().float(), b.argsort().argsort().float()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="folder for the heatmap PNG (default: %(default)s)")
    args = parser.parse_args()

    model, tokenizer = load_sentiment_minilm()
    text = "the acting was superb , but the story is a dull and lifeless mess ."
    enc = tokenizer([text], return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    tokens = tokenizer.convert_ids_to_tokens(ids[0])

    # 1. NormXLogit: one forward pass; target=None explains the model's own prediction.
    nx = NormXLogit(model)
    scores = nx.attribute(ids, additional_forward_args=(mask,))[0]
    probs = nx.forward_func(ids, mask).softmax(-1)[0].detach()
    label = int(probs.argmax())
    print(f"prediction: {model.config.id2label[label]} (p={probs[label]:.3f})")

    # 2. Integrated Gradients on the very same function and target.
    baseline = torch.where(torch.isin(ids, torch.tensor(tokenizer.all_special_ids)), ids, tokenizer.pad_token_id)
    lig = LayerIntegratedGradients(nx.forward_func, model.bert.embeddings)
    ig = reduce_hidden(lig.attribute(ids, baselines=baseline, target=label, additional_forward_args=(mask,)), "sum")[0]
    for token, a, b in zip(tokens, scores.tolist(), ig.tolist()):
        print(f"{token:>10s}  NormXLogit {a:+8.2f}   IG {b:+7.3f}")
    print(f"Spearman rank agreement: {spearman(scores, ig):+.2f}")

    # 3. Layer-wise view: the head read on every hidden state, from one more forward pass.
    #    Rows are hidden states 0 (embeddings) .. 6, on one colour scale centred at 0.
    layers = nx.attribute_all_layers(ids, target=label, additional_forward_args=(mask,))[0]
    fig = plot_layer_heatmap(layers, tokens, title=f"NormXLogit per layer, target {model.config.id2label[label]}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "layerwise_heatmap.png")
    fig.savefig(path, dpi=120)
    print(f"heatmap saved to {path}")


if __name__ == "__main__":
    main()
