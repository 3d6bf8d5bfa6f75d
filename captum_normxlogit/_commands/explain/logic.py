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
from captum_normxlogit._models.load import ModelFolderError, load_model_folder
from captum_normxlogit._models.tasks import CAUSAL_LM, MASKED_LM, SEQUENCE_CLASSIFICATION
from captum_normxlogit._utils.model_parts import input_limit
from captum_normxlogit._utils.padding import pad_token_id_or_eos
from captum_normxlogit._utils.quiet import quiet_transformers as _quiet_transformers
from captum_normxlogit._utils.targets import TargetError, label_index, one_token
from captum_normxlogit.methods import IG, LAYER_IG, NORMXLOGIT, AttributionMethod, build_method, parse_method_keys

if TYPE_CHECKING:  # transformers is imported only when a model is loaded
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["ExplainError", "Explanation", "LoadedModel", "explain", "load_model", "parse_methods"]

DEFAULT_METHODS = (NORMXLOGIT.key, IG.key)


class ExplainError(ValueError):
    r"""A request ``explain`` cannot serve; the message says what was wrong and what to do."""


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
        return input_limit(self.model, self.tokenizer)


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
    description = None
    if path is None:  # the default is a folder of the cache, loaded as any other
        from captum_normxlogit.resources import sentiment_minilm_dir, sentiment_minilm_metrics

        try:
            sentiment_minilm_metrics()  # written last: the folder is complete
        except FileNotFoundError as error:
            raise ExplainError(f"the default model is not prepared: {error}") from None
        path, description = str(sentiment_minilm_dir()), "fine-tuned all-MiniLM-L6-v2 sentiment classifier"
    try:
        model, tokenizer, kind = load_model_folder(path)
    except ModelFolderError as error:
        raise ExplainError(f"--model {error}") from None
    if kind == SEQUENCE_CLASSIFICATION and int(model.config.num_labels) < 2:
        raise ExplainError(
            f"--model {path}: a regression head (one label) has no label to explain; explain needs classes."
        )
    assert kind is not None  # the loader names a task unless any_architecture
    name = description or f"{type(model).__name__} ({Path(path).expanduser().resolve().name})"
    return LoadedModel(model, tokenizer, kind, name)


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
    vocab = int(getattr(loaded.model.config, "vocab_size", 0) or 0)
    try:
        return one_token(loaded.tokenizer, vocab, target, "--target")
    except TargetError as error:
        raise ExplainError(str(error)) from None


def _label_index(loaded: LoadedModel, target: str) -> int:
    id2label = {int(k): str(v) for k, v in (loaded.model.config.id2label or {}).items()}
    try:
        return label_index(id2label, target, "--target")
    except TargetError as error:
        raise ExplainError(str(error)) from None


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
