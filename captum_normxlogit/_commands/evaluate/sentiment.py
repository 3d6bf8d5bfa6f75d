r"""The two real sentiment tasks of ``normxlogit evaluate``.

Both explain the 500 held-out Rotten-Tomatoes sentences of
:func:`captum_normxlogit.resources.rotten_tomatoes_split` (never seen in
fine-tuning) with every method of :func:`captum_normxlogit.compare` and score
them with the paper's faithfulness protocol:

- ``sentiment-minilm``: the fine-tuned MiniLM classifier
  (``BertForSequenceClassification``). As the paper's BERT code: removed
  tokens become ``[MASK]``, ``[CLS]`` is never removed, ``[SEP]`` may be,
  ``len`` counts every real token.
- ``sentiment-smollm2``: SmolLM2-135M-Instruct as a classifier through label
  words: after the prompt ``"Review: <sentence>\nSentiment:"`` the class
  logits are the next-token logits of ``" negative"`` and ``" positive"``, so
  the predicted probability of "positive" is the sigmoid of their difference.
  A decoder has no ``[MASK]``; removed tokens become ``" ..."`` (one token, an
  ellipsis standing for left-out words, keeping every position). The prompt
  is never removed and ``len`` counts the sentence's tokens only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import pandas as pd
import torch
from torch import Tensor, nn

from captum_normxlogit._commands.evaluate.tasks import TASKS
from captum_normxlogit._core.normxlogit import NormXLogit
from captum_normxlogit._utils.padding import pad_batch, pad_token_id_or_eos
from captum_normxlogit.comparison import ComparisonResult, compare
from captum_normxlogit.methods import IG, LAYER_IG, METHOD_KEYS, build_method, parse_method_keys

__all__ = [
    "LabelWordClassifier",
    "TaskResult",
    "run_sentiment_minilm",
    "run_sentiment_smollm2",
]

PROMPT = ("Review:", "\nSentiment:")  # the sentence goes between, after a space
LABEL_WORDS = (" negative", " positive")  # class 0 and 1, as the data's labels
DECODER_REPLACEMENT = " ..."
# The defaults of the committed runs are the task table's (tasks.py says why they are these).
_MINILM, _SMOLLM2 = TASKS["sentiment-minilm"], TASKS["sentiment-smollm2"]


@dataclass
class TaskResult:
    r"""One task's outcome: ``.table`` (pandas) and ``.write(output_dir)`` like every ``evaluate`` task."""

    name: str
    comparison: ComparisonResult

    @property
    def table(self) -> pd.DataFrame:
        return self.comparison.table

    def write(self, output_dir: Union[str, Path]) -> List[Path]:
        r"""``<name>.csv``, ``<name>_curves.csv``, ``<name>.md`` and ``<name>.png`` in ``output_dir``."""
        return self.comparison.write(output_dir, stem=self.name)


class LabelWordClassifier:
    r"""A causal LM read as a classifier: class ``c``'s logit is the next-token
    logit of ``label_words[c]`` after ``prefix + " " + text + suffix``.

    Args:
        model (nn.Module): A ``*ForCausalLM`` NormXLogit supports.
        tokenizer: Its tokenizer.
        prompt (tuple of str, optional): ``(prefix, suffix)``. Default: :data:`PROMPT`
        label_words (sequence of str, optional): One word per class; each must
            be a single token. Default: :data:`LABEL_WORDS`

    Attributes:
        nx (NormXLogit): On ``model``.
        label_ids (tuple of int): The label words' vocabulary ids, by class.
    """

    def __init__(
        self, model: nn.Module, tokenizer, prompt: Tuple[str, str] = PROMPT, label_words: Sequence[str] = LABEL_WORDS
    ) -> None:
        self.nx = NormXLogit(model)
        self.tokenizer = tokenizer
        ids = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in label_words]
        several = [w for w, i in zip(label_words, ids) if len(i) != 1]
        if several:
            raise ValueError(f"Label words {several} are not single tokens for this tokenizer; choose other words.")
        self.label_words = tuple(label_words)
        self.label_ids = tuple(i[0] for i in ids)
        self.prefix = tokenizer(prompt[0], add_special_tokens=False)["input_ids"]
        self.suffix = tokenizer(prompt[1], add_special_tokens=False)["input_ids"]
        self.prompt = prompt

    def encode(self, texts: Sequence[str], pad_token_id: int) -> Tuple[Tensor, Tensor, Tensor]:
        r"""Right-padded ``(input_ids, attention_mask, prompt)``, each ``(N, T)``;
        ``prompt`` is True on the template's tokens."""
        rows = [
            self.prefix + self.tokenizer(" " + t, add_special_tokens=False)["input_ids"] + self.suffix for t in texts
        ]
        ids, mask = pad_batch(rows, pad_token_id)
        return ids, mask, self.template_mask(mask)

    def template_mask(self, attention_mask: Tensor) -> Tensor:
        r"""``(N, T)`` bool: the prompt's positions in right-padded rows."""
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        lengths = attention_mask.sum(-1, keepdim=True)
        return (positions < len(self.prefix)) | ((positions >= lengths - len(self.suffix)) & (positions < lengths))

    def forward(self, inputs: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        r"""``(B, 2)`` class logits from ids ``(B, T)`` or embeddings ``(B, T, H)``; differentiable."""
        return self.nx.forward_func(inputs, attention_mask)[:, list(self.label_ids)]


def _held_out(limit: Optional[int]) -> Tuple[List[str], Tensor]:
    from captum_normxlogit.resources import rotten_tomatoes_split

    _, test = rotten_tomatoes_split()
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}.")
        test = test[:limit]
    return [t for t, _ in test], torch.tensor([label for _, label in test])


def _timing_note(result: ComparisonResult) -> str:
    settings = result.settings
    return (
        f"Time and memory: the attribution calls alone, on {settings['device']} with "
        f"{settings['torch_threads']} torch thread(s); on a shared machine compare them within one table only."
    )


def _check_methods(methods: Optional[Sequence[str]]) -> List[str]:
    return list(METHOD_KEYS) if methods is None else parse_method_keys(methods)


def run_sentiment_minilm(
    *,
    limit: Optional[int] = _MINILM.limit,
    ig_steps: int = _MINILM.ig_steps,
    batch_size: int = _MINILM.batch_size,
    device: str = "cpu",
    progress: bool = True,
    methods: Optional[Sequence[str]] = None,
) -> TaskResult:
    r"""Every method on the fine-tuned MiniLM over the held-out sentences.

    Args:
        limit (int, optional): Use the first ``limit`` of the 500 held-out sentences. Default: None (all)
        ig_steps (int, optional): Integrated Gradients steps (both IG methods). Default: 20
        batch_size (int, optional): Sentences per attribution call; IG runs
            all its steps at once. Default: 16
        device (str, optional): Torch device. Default: ``"cpu"``
        progress (bool, optional): Progress bars. Default: True
        methods (sequence of str, optional): Method keys; None for all eight. Default: None

    Returns:
        :class:`TaskResult` named ``sentiment-minilm``.
    """
    from captum_normxlogit.resources import load_sentiment_minilm

    keys = _check_methods(methods)
    texts, labels = _held_out(limit)
    model, tokenizer = load_sentiment_minilm(progress=progress)
    model = model.to(device)  # type: ignore[arg-type]  # transformers' wrapped .to() hides its signature from mypy
    enc = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    result = compare(
        NormXLogit(model),
        enc["input_ids"],
        enc["attention_mask"],
        labels=labels,
        methods=keys,
        special_token_ids=(tokenizer.cls_token_id,),
        removal=tokenizer.mask_token_id,
        baseline_keep_ids=(tokenizer.cls_token_id, tokenizer.sep_token_id),
        pad_token_id=tokenizer.pad_token_id,
        batch_size=batch_size,
        ig_steps=ig_steps,
        internal_batch_size=batch_size * ig_steps,
        progress=progress,
    )
    result.settings["title"] = f"Fine-tuned MiniLM, {len(texts)} held-out Rotten-Tomatoes sentences"
    result.notes += [
        f"all-MiniLM-L6-v2 fine-tuned on 3,500 Rotten-Tomatoes sentences (`load_sentiment_minilm()`), "
        f"explained on {len(texts)} held-out sentences for its own prediction; accuracy on them "
        f"{result.settings['model_accuracy']:.3f}.",
        "",
        "Protocol as the paper's BERT code: removed tokens are replaced by `[MASK]`; `[CLS]` is never removed, "
        f"`[SEP]` may be; `int(len × K)` tokens with `len` counting every real token. Gradient methods: "
        f"{IG.defaults['reduction'].upper()} norm over the hidden dimension; {IG.name} on word embeddings with an "
        f"all-{IG.defaults['baselines']} baseline, {LAYER_IG.name} on the embedding layer with a baseline of `[PAD]` "
        f"keeping `[CLS]`/`[SEP]`; {ig_steps} steps each.",
    ]
    result.notes += ["", _timing_note(result)]
    return TaskResult("sentiment-minilm", result)


def run_sentiment_smollm2(
    *,
    limit: Optional[int] = _SMOLLM2.limit,
    ig_steps: int = _SMOLLM2.ig_steps,
    batch_size: int = _SMOLLM2.batch_size,
    device: str = "cpu",
    progress: bool = True,
    methods: Optional[Sequence[str]] = None,
) -> TaskResult:
    r"""Every method on SmolLM2-135M as a label-word sentiment classifier.

    Arguments as :func:`run_sentiment_minilm`, except the defaults: ``limit``
    100 (the first 100 held-out sentences; None takes all 500, about five
    times the 2-core CPU time of the MiniLM task), ``ig_steps`` 10,
    ``batch_size`` 8; Integrated Gradients runs 32 sequences at a time.

    Returns:
        :class:`TaskResult` named ``sentiment-smollm2``.
    """
    from captum_normxlogit.resources import load_smollm2

    keys = _check_methods(methods)
    texts, labels = _held_out(limit)
    model, tokenizer = load_smollm2()
    model = model.to(device)  # type: ignore[arg-type]  # transformers' wrapped .to() hides its signature from mypy
    classifier = LabelWordClassifier(model, tokenizer)
    replacement = tokenizer(DECODER_REPLACEMENT, add_special_tokens=False)["input_ids"]
    if len(replacement) != 1:
        raise ValueError(f"{DECODER_REPLACEMENT!r} is not one token for this tokenizer.")
    pad = pad_token_id_or_eos(tokenizer)
    if pad is None:
        raise ValueError("the SmolLM2 tokenizer has neither a pad nor an EOS token to pad the batch with.")
    ids, mask, prompt = classifier.encode(texts, pad)
    internal = 32
    # LayerIG's baseline keeps the prompt and turns only the sentence's tokens into the pad token.
    chosen = [
        build_method(
            key,
            classifier.nx,
            forward_func=classifier.forward,
            target_ids=classifier.label_ids,
            ig_steps=ig_steps,
            internal_batch_size=internal,
            pad_token_id=pad,
            keep_positions=classifier.template_mask,
        )
        for key in keys
    ]
    result = compare(
        classifier.nx,
        ids,
        mask,
        labels=labels,
        methods=chosen,
        forward_func=classifier.forward,
        target_ids=classifier.label_ids,
        special_token_ids=(),
        protected=prompt,
        length="removable",
        removal=replacement[0],
        pad_token_id=pad,
        batch_size=batch_size,
        ig_steps=ig_steps,
        internal_batch_size=internal,
        progress=progress,
    )
    accuracy = result.settings["model_accuracy"]
    result.settings["title"] = f"SmolLM2-135M label-word classifier, {len(texts)} held-out Rotten-Tomatoes sentences"
    result.settings["prompt"] = repr(classifier.prompt[0] + " <sentence>" + classifier.prompt[1])
    result.settings["label_ids"] = dict(zip(classifier.label_words, classifier.label_ids))
    result.notes += [
        f"SmolLM2-135M-Instruct (`load_smollm2()`, dequantised Q4_1 weights, not fine-tuned) as a sentiment "
        f"classifier: prompt `Review: <sentence>⏎Sentiment:`, class logits = next-token logits of "
        f"{' and '.join(repr(w) for w in classifier.label_words)} (single tokens {classifier.label_ids}), so "
        f"p(positive) = sigmoid(logit positive − logit negative). Accuracy on these {len(texts)} held-out "
        f"sentences: {accuracy:.3f}. NormXLogit reads the head's row of the explained label word.",
        "",
        f"A decoder has no `[MASK]`: removed tokens are replaced by {DECODER_REPLACEMENT!r} (id {replacement[0]}), "
        "keeping every position. The prompt is never removed and `len` counts the sentence's tokens only. "
        f"{IG.name}: word embeddings, all-{IG.defaults['baselines']} baseline; {LAYER_IG.name}: embedding layer, "
        f"baseline keeps the prompt and turns the sentence into the pad token; {ig_steps} steps each, "
        f"{IG.defaults['reduction'].upper()} norm over the hidden dimension.",
    ]
    result.notes += ["", _timing_note(result)]
    return TaskResult("sentiment-smollm2", result)
