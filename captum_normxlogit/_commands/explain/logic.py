r"""The logic of ``normxlogit explain``: load a model, read one text, explain its prediction.

:func:`load_model` reads a local model folder (or the embedded default) and
:func:`explain` returns an :class:`Explanation` (tokens, scores of every method,
layer-wise scores); :mod:`captum_normxlogit._commands.explain.command` prints it and writes
the HTML / PNG. Everything that can be wrong with a request raises
:class:`ExplainError` before any file is written.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from captum_normxlogit import NormXLogit, UnsupportedModelError
from captum_normxlogit._models.tasks import CAUSAL_LM, MASKED_LM, SEQUENCE_CLASSIFICATION
from captum_normxlogit._utils.padding import pad_token_id_or_eos
from captum_normxlogit._utils.quiet import quiet_transformers as _quiet_transformers
from captum_normxlogit.methods import IG, LAYER_IG, NORMXLOGIT, AttributionMethod, build_method, parse_method_keys

if TYPE_CHECKING:  # transformers is imported only when a model is loaded
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["ExplainError", "Explanation", "LoadedModel", "explain", "load_model", "parse_methods"]

DEFAULT_METHODS = (NORMXLOGIT.key, IG.key)
KINDS = {"ForSequenceClassification": SEQUENCE_CLASSIFICATION, "ForMaskedLM": MASKED_LM, "ForCausalLM": CAUSAL_LM}
_NO_LIMIT = 1_000_000  # tokenizers without a limit report a huge sentinel (1e30)
# Any one of these in a model folder holds a tokenizer; without them transformers would build an
# empty vocabulary from the config alone and read every word as the unknown token.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)


class ExplainError(ValueError):
    r"""A request ``explain`` cannot serve; the message says what was wrong and what to do."""


def _one_line(error: BaseException) -> str:
    r"""A library error's message on one line (transformers' can span several)."""
    return " ".join(str(error).split()) or type(error).__name__


@dataclass
class LoadedModel:
    r"""A model ready to explain.

    Attributes:
        model (nn.Module): In eval mode.
        tokenizer: Its tokenizer.
        kind (str): The model task (:mod:`captum_normxlogit._models.tasks`).
        name (str): Shown to the user.
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    kind: str
    name: str

    @property
    def max_tokens(self) -> int:
        r"""The longest input the model takes (tokenizer and position-embedding limits)."""
        limits = [int(getattr(self.tokenizer, "model_max_length", _NO_LIMIT) or _NO_LIMIT)]
        limits.append(int(getattr(self.model.config, "max_position_embeddings", None) or _NO_LIMIT))
        return min(limit for limit in limits if limit > 0)


@dataclass
class Explanation:
    r"""What :func:`explain` computed for one text.

    Attributes:
        tokens (list of str): ``T`` token strings (``convert_ids_to_tokens``).
        scores (dict of str to Tensor): Method name to ``(T,)`` raw scores,
            signed: positive pushes towards the explained target.
        seconds (dict of str to float): Method name to wall time.
        unsigned (list of str): Methods whose scores carry no sign.
        prediction (str): The model's own prediction, e.g. ``POSITIVE (p=0.987)``.
        target (str): What was explained, e.g. ``POSITIVE`` or ``' Paris'``.
        target_probability (float): The model's probability of the target.
        layer_scores (Tensor or None): ``(L + 1, T)`` NormXLogit read on
            every hidden state (0 = embeddings), when asked for.
        truncated_from (int or None): The original length when the text was cut.
        notes (list of str): Warnings for the user (e.g. the truncation).
    """

    tokens: List[str]
    scores: Dict[str, Tensor]
    seconds: Dict[str, float]
    unsigned: List[str]
    prediction: str
    target: str
    target_probability: float
    layer_scores: Optional[Tensor] = None
    truncated_from: Optional[int] = None
    notes: List[str] = field(default_factory=list)


def load_model(path: Optional[str] = None) -> LoadedModel:
    r"""Load a local Hugging Face model directory, or the embedded fine-tuned MiniLM.

    Args:
        path (str, optional): A folder saved with ``save_pretrained`` holding a
            sequence classifier, a masked LM or a causal LM (``config.architectures``
            says which). Default: None (the fine-tuned MiniLM sentiment classifier)

    Returns:
        LoadedModel
    """
    if path is None:
        from captum_normxlogit.resources import load_sentiment_minilm

        try:
            with _quiet_transformers():
                model, tokenizer = load_sentiment_minilm(train_if_missing=False, progress=False)
        except FileNotFoundError as error:
            raise ExplainError(f"the default model is not prepared: {error}") from None
        description = "fine-tuned all-MiniLM-L6-v2 sentiment classifier"
        return LoadedModel(model, tokenizer, SEQUENCE_CLASSIFICATION, description)
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ExplainError(f"--model {path}: no such directory. Pass a local Hugging Face model folder.")
    if not (folder / "config.json").is_file():
        raise ExplainError(
            f"--model {path}: no config.json there. Pass a folder written by save_pretrained() "
            "(config.json, weights and tokenizer files)."
        )
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except Exception as error:  # a corrupt or foreign config.json: JSON, key and type errors alike
        raise ExplainError(f"--model {path}: config.json cannot be read ({_one_line(error)}).") from None
    architectures = list(getattr(config, "architectures", None) or [])
    kind = next((k for arch in architectures for suffix, k in KINDS.items() if arch.endswith(suffix)), None)
    if kind is None:
        raise ExplainError(
            f"--model {path}: config.architectures is {architectures or 'empty'}; explain takes a sequence "
            "classifier (*ForSequenceClassification), a masked LM (*ForMaskedLM) or a causal LM (*ForCausalLM)."
        )
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ExplainError(
            f"--model {path}: no tokenizer files there (one of {', '.join(TOKENIZER_FILES)}); without them every "
            "word would be read as an unknown token. Save it next to the model with tokenizer.save_pretrained()."
        )
    loader = {
        SEQUENCE_CLASSIFICATION: AutoModelForSequenceClassification,
        MASKED_LM: AutoModelForMaskedLM,
        CAUSAL_LM: AutoModelForCausalLM,
    }[kind]
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            model = loader.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    except Exception as error:  # broken weights or tokenizer files raise many kinds of error
        raise ExplainError(f"--model {path}: could not load it ({_one_line(error)}).") from None
    if kind == SEQUENCE_CLASSIFICATION and int(model.config.num_labels) < 2:
        raise ExplainError(
            f"--model {path}: a regression head (one label) has no label to explain; explain needs classes."
        )
    return LoadedModel(model.eval(), tokenizer, kind, f"{type(model).__name__} ({folder.resolve().name})")


def parse_methods(spec: str) -> List[str]:
    r"""``"normxlogit,IG"`` → ``["normxlogit", "ig"]`` (case-insensitive), checked against :data:`METHOD_KEYS`."""
    try:
        return parse_method_keys(spec)
    except ValueError as exc:
        raise ExplainError(str(exc)) from None


def _encode(loaded: LoadedModel, text: str, truncate: bool) -> Tuple[Tensor, Optional[int], Optional[str]]:
    r"""``(input_ids (1, T), original length if cut, a warning)``."""
    if not text.strip():
        raise ExplainError("TEXT is empty; pass the sentence to explain.")
    broken = [i for i, ch in enumerate(text) if 0xD800 <= ord(ch) <= 0xDFFF]
    if broken:  # undecodable command-line bytes arrive as lone surrogates, which no tokenizer takes
        from captum_normxlogit.visualization.tokens import visible_text

        raise ExplainError(
            f"TEXT is not valid text: undecodable bytes at character {broken[0]} "
            f"({visible_text(text[broken[0]])}); pass UTF-8 text (check the terminal's encoding)."
        )
    tokenizer, limit = loaded.tokenizer, loaded.max_tokens
    with _quiet_transformers():
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
    n = ids.shape[1]
    unk = getattr(tokenizer, "unk_token_id", None)
    special = set(getattr(tokenizer, "all_special_ids", ()) or ()) - {unk}
    words = [i for i in ids[0].tolist() if i not in special]
    if unk is not None and words and all(i == unk for i in words):
        raise ExplainError(
            f"every token of TEXT is the unknown token {tokenizer.unk_token!r}: the tokenizer does not know this "
            "text (or its vocabulary files are missing), so there is nothing to explain."
        )
    if n <= limit:
        return ids, None, None
    # A causal LM predicts what follows the end, so it keeps the end; the others keep the start.
    side = "left" if loaded.kind == CAUSAL_LM else "right"
    where = "last" if side == "left" else "first"
    if not truncate:
        raise ExplainError(
            f"TEXT is {n} tokens but the model takes at most {limit}; shorten it, or pass --truncate "
            f"to keep the {where} {limit}."
        )
    previous = tokenizer.truncation_side
    tokenizer.truncation_side = side
    try:
        with _quiet_transformers():
            ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=limit)["input_ids"]
    finally:
        tokenizer.truncation_side = previous
    return ids, n, f"warning: TEXT is {n} tokens, the model takes at most {limit}: explaining the {where} {limit}."


def _one_token(loaded: LoadedModel, target: str) -> int:
    ids = loaded.tokenizer.encode(target, add_special_tokens=False)
    if len(ids) != 1:
        pieces = loaded.tokenizer.convert_ids_to_tokens(ids)
        hint = ""
        if loaded.kind == CAUSAL_LM:
            hint = " (a word after a space usually needs its leading space, e.g. ' Paris')"
        raise ExplainError(f"--target {target!r} is {len(ids)} tokens {pieces}; it must be exactly one token{hint}.")
    return ids[0]


def _label_index(loaded: LoadedModel, target: str) -> int:
    id2label = {int(k): str(v) for k, v in (loaded.model.config.id2label or {}).items()}
    for wanted in (lambda name: name == target, lambda name: name.lower() == target.lower()):
        hits = [i for i, name in id2label.items() if wanted(name)]
        if len(hits) == 1:
            return hits[0]
    if target.isdigit() and int(target) in id2label:
        return int(target)
    names = ", ".join(id2label[i] for i in sorted(id2label))
    raise ExplainError(
        f"--target {target!r} is not a label of this model; its labels (config.id2label) are {names}, "
        f"or their indices 0..{len(id2label) - 1}."
    )


def _forward_func(loaded: LoadedModel, nx: NormXLogit, ids: Tensor) -> Callable[..., Tensor]:
    r"""What every method explains: ``f(inputs, attention_mask) -> (B, C or V)``."""
    if loaded.kind != MASKED_LM:
        return nx.forward_func
    # NormXLogit's forward_func finds [MASK] in input_ids, which gradient methods replace by
    # embeddings; the position is fixed for one text, so read the logits there directly.
    position = int((ids[0] == loaded.tokenizer.mask_token_id).nonzero()[0, 0])
    model = loaded.model

    def masked_forward(inputs: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        key = "inputs_embeds" if inputs.is_floating_point() else "input_ids"
        return model(**{key: inputs}, attention_mask=attention_mask).logits[:, position]

    return masked_forward


def _token_string(tokenizer, token_id: int) -> str:
    return repr(tokenizer.decode([token_id]))


def explain(
    loaded: LoadedModel,
    text: str,
    *,
    target: Optional[str] = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    layers: bool = False,
    ig_steps: int = IG.defaults["ig_steps"],
    reduction: str = "sum",
    truncate: bool = False,
    progress: Optional[Callable[[str], contextlib.AbstractContextManager]] = None,
) -> Explanation:
    r"""Explain the model's output for one text with several methods.

    Args:
        loaded (LoadedModel): From :func:`load_model`.
        text (str): The input. A masked LM needs exactly one mask token in it.
        target (str, optional): A label name (or index) of a classifier, or
            one token for a language model. Default: None (the prediction)
        methods (sequence of str, optional): Keys of
            :data:`captum_normxlogit.methods.METHOD_KEYS`. Default: ``("normxlogit", "ig")``
        layers (bool, optional): Also compute NormXLogit on every hidden state.
            Default: False
        ig_steps (int, optional): Integrated Gradients steps. Default: 50
        reduction (str, optional): How gradient methods' ``(T, H)`` becomes
            ``(T,)``: ``"sum"`` keeps the sign; ``"l1"`` is the paper's
            (unsigned) choice. Default: ``"sum"``
        truncate (bool, optional): Cut a text longer than the model's limit
            (with a note) instead of refusing it. Default: False
        progress (callable, optional): ``progress(message)`` returns a context
            manager shown while a method runs. Default: None

    Returns:
        Explanation
    """
    model, tokenizer, kind = loaded.model, loaded.tokenizer, loaded.kind
    keys = list(methods)
    ids, truncated_from, warning = _encode(loaded, text, truncate)
    device = next(model.parameters()).device  # the inputs go where the model is (--device)
    ids = ids.to(device)
    mask = torch.ones_like(ids)
    mask_id = getattr(tokenizer, "mask_token_id", None)
    if kind == MASKED_LM:
        count = int((ids == mask_id).sum()) if mask_id is not None else 0
        if count != 1:
            raise ExplainError(
                f"a masked LM predicts the token at its mask: TEXT must contain {tokenizer.mask_token!r} exactly "
                f"once (found {count} after tokenization)."
            )
    try:
        nx = NormXLogit(model, mask_token_id=mask_id if kind == MASKED_LM else None)
    except UnsupportedModelError as error:  # the one-line reason; check-model prints the rest
        raise ExplainError(
            f"{error.reason} (`normxlogit check-model <model folder>` shows both checks; from Python, pass a "
            "custom ModelAdapter)"
        ) from None
    forward = _forward_func(loaded, nx, ids)
    with torch.no_grad():
        probs = forward(ids, mask).float().softmax(-1)[0]
    predicted = int(probs.argmax())
    if kind == SEQUENCE_CLASSIFICATION:
        names = {int(k): str(v) for k, v in (model.config.id2label or {}).items()}
        target_id = predicted if target is None else _label_index(loaded, target)
        describe = lambda i: names.get(i, str(i))  # noqa: E731
    else:
        target_id = predicted if target is None else _one_token(loaded, target)
        describe = lambda i: _token_string(tokenizer, i)  # noqa: E731
    what = {SEQUENCE_CLASSIFICATION: "", MASKED_LM: "mask → ", CAUSAL_LM: "next token "}[kind]
    pad_id = pad_token_id_or_eos(tokenizer)
    if LAYER_IG.key in keys and pad_id is None:
        raise ExplainError(
            f"{LAYER_IG.key} replaces tokens by the pad token, and this tokenizer has neither a pad nor an EOS token."
        )
    explanation = Explanation(
        tokens=list(tokenizer.convert_ids_to_tokens(ids[0].tolist())),
        scores={},
        seconds={},
        unsigned=[],
        prediction=f"{what}{describe(predicted)} (p={float(probs[predicted]):.3f})",
        target=describe(target_id),
        target_probability=float(probs[target_id]),
        truncated_from=truncated_from,
    )
    if warning:
        explanation.notes.append(warning)
    progress = progress or (lambda message: contextlib.nullcontext())
    target_tensor = torch.tensor([target_id], device=device)
    for key in keys:
        method: AttributionMethod = build_method(
            key,
            nx,
            pad_token_id=pad_id,
            special_token_ids=tokenizer.all_special_ids,
            forward_func=forward,
            ig_steps=ig_steps,
            internal_batch_size=ig_steps,
            reduction=reduction,
        )
        with progress(f"{method.name}…"):
            start = time.perf_counter()
            scores = method(ids, mask, target_tensor)[0].cpu()
            explanation.seconds[method.name] = time.perf_counter() - start
        explanation.scores[method.name] = scores
        if not method.signed:
            explanation.unsigned.append(method.name)
    if layers:
        with progress("NormXLogit on every layer…"):
            explanation.layer_scores = nx.attribute_all_layers(
                ids, target=target_tensor, additional_forward_args=(mask,)
            )[0].cpu()
    return explanation
