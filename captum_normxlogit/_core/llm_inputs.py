r"""Prompts, targets and foils for :class:`LLMNormXLogit`: parsing, generation, token strings.

Everything that can be wrong with a request is checked here, before the attribution pass runs.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from captum.attr import TextTokenInput
from torch import Tensor, nn

from captum_normxlogit._utils.capture import eval_mode
from captum_normxlogit._utils.padding import pad_batch

__all__ = [
    "DEFAULT_GEN_ARGS",
    "PromptLike",
    "TargetLike",
    "align_foil",
    "as_ids",
    "check_prompt_ids",
    "generate",
    "pretty_tokens",
    "prompt_input",
    "sequences_per_prompt",
    "target_ids",
]

#: Greedy decoding of 25 new tokens: Captum's own default for ``LLMAttribution`` (copied, as Captum keeps it private).
DEFAULT_GEN_ARGS: Dict[str, Any] = {"max_new_tokens": 25, "do_sample": False, "temperature": None, "top_p": None}

PromptLike = Union[str, TextTokenInput]
TargetLike = Union[None, str, Tensor, Sequence[int]]


def prompt_input(inp: Any, tokenizer: Any) -> TextTokenInput:
    r"""A ``TextTokenInput`` for ``inp`` (a string is tokenized the way Captum does)."""
    if isinstance(inp, str):
        if not inp:
            raise ValueError("The prompt is an empty string: there is no input token to attribute to.")
        inp = TextTokenInput(inp, tokenizer)
    if not isinstance(inp, TextTokenInput):
        raise TypeError(
            f"LLMNormXLogit takes a prompt string or captum's TextTokenInput, got {type(inp).__name__}; "
            "TextTemplateInput features are text segments, not tokens, so a token-level method cannot score them."
        )
    ids = inp.inp_tensor
    if ids.dim() != 2 or ids.shape[0] != 1 or ids.shape[1] == 0:
        raise ValueError(f"TextTokenInput.inp_tensor must be one non-empty row (1, n), got {tuple(ids.shape)}.")
    if inp.n_itp_features == 0:
        raise ValueError("Every prompt token is in skip_tokens: no input token is left to attribute to.")
    return inp


def check_prompt_ids(inp: TextTokenInput, index: int, vocab: int) -> None:
    r"""Refuse prompt ids the model's embedding table does not hold (a tokenizer with a larger vocabulary)."""
    ids = inp.inp_tensor
    bad = sorted({int(i) for i in ids[(ids < 0) | (ids >= vocab)].tolist()})
    if bad:
        raise ValueError(
            f"Prompt {index} holds token ids {bad[:8]} outside the model's vocabulary [0, {vocab}): the tokenizer "
            "does not belong to this model (its vocabulary is larger). Pass the model's own tokenizer, or resize "
            "the model's embeddings (model.resize_token_embeddings(len(tokenizer)))."
        )


def sequences_per_prompt(model: nn.Module, gen_args: Optional[Dict[str, Any]]) -> int:
    r"""How many generations ``model.generate`` returns per prompt (``num_return_sequences``)."""
    n = (gen_args or {}).get("num_return_sequences")
    if n is None:
        n = getattr(getattr(model, "generation_config", None), "num_return_sequences", None)
    return 1 if n is None else int(n)


def as_ids(value: Any, tokenizer: Any, name: str, vocab: int) -> Tensor:
    r"""A 1-D long tensor of vocabulary ids from a string (no special tokens), int, list or tensor."""
    if isinstance(value, str):
        if not value:
            raise ValueError(f"{name} is an empty string: nothing to score.")
        out = torch.tensor(tokenizer.encode(value, add_special_tokens=False), dtype=torch.long)
    elif isinstance(value, bool):
        raise TypeError(f"{name} must be a string, token ids or a 1-D tensor, not a bool.")
    elif isinstance(value, int):
        out = torch.tensor([value], dtype=torch.long)
    elif isinstance(value, (Tensor, list, tuple)):
        out = torch.as_tensor(value)
        if out.is_floating_point() or out.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer token ids, got dtype {out.dtype}.")
        if out.dim() == 2 and out.shape[0] == 1:
            out = out[0]  # generate()-style (1, m)
        if out.dim() == 0:
            out = out.reshape(1)
        if out.dim() != 1:
            raise ValueError(f"{name} must be a 1-D sequence of token ids, got shape {tuple(out.shape)}.")
        out = out.long().cpu()
    else:
        raise TypeError(f"{name} must be a string, token ids or a 1-D tensor, got {type(value).__name__}.")
    if out.numel() == 0:
        raise ValueError(f"{name} holds no token (an empty sequence, or a string that encodes to nothing).")
    bad = ((out < 0) | (out >= vocab)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"{name} ids {out[bad].tolist()} lie outside the vocabulary [0, {vocab}).")
    return out


def target_ids(target: Any, tokenizer: Any, vocab: int) -> Tensor:
    r"""The teacher-forced target tokens ``(m,)``: a string (encoded without special tokens, as Captum does) or ids."""
    return as_ids(target, tokenizer, "target", vocab)


def align_foil(foil: Tensor, n_targets: int) -> Tensor:
    r"""One foil id per target token ``(m,)``: a single token is used for every row, ``m`` tokens row by row."""
    if foil.numel() == 1:
        return foil.expand(n_targets).clone()
    if foil.numel() != n_targets:
        raise ValueError(
            f"foil holds {foil.numel()} tokens for {n_targets} target tokens: pass one token (contrasted with "
            f"every target token) or exactly {n_targets} (contrasted row by row)."
        )
    return foil


def _eos_ids(model: nn.Module, gen_args: Dict[str, Any]) -> List[int]:
    eos = gen_args.get("eos_token_id", getattr(getattr(model, "generation_config", None), "eos_token_id", None))
    if eos is None:
        return []
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]


def generate(
    model: nn.Module, prompts: List[Tensor], gen_args: Optional[Dict[str, Any]], pad_id: int, device: torch.device
) -> List[Tensor]:
    r"""Generate a continuation of every prompt with ``model.generate`` (one left-padded batch).

    Returns one ``(m_b,)`` tensor per generated sequence: the new tokens up to and including the
    first end-of-sequence token (a finished row of a batch is padded by ``generate``; that padding
    is cut). With ``num_return_sequences = n`` that is ``n`` per prompt, grouped by prompt (prompt
    0's ``n``, then prompt 1's), the order ``generate`` returns them in.
    """
    model_generate = getattr(model, "generate", None)  # a Hugging Face GenerationMixin method
    if not callable(model_generate):
        raise TypeError(
            f"{type(model).__name__} has no generate(); pass target= (a string or token ids) to teacher-force instead."
        )
    args = dict(DEFAULT_GEN_ARGS if not gen_args else gen_args)
    for key in ("input_ids", "attention_mask", "inputs_embeds"):
        if key in args:
            raise ValueError(f"gen_args must not hold {key!r}: the prompt comes from inp.")
    if args.get("return_dict_in_generate"):
        raise ValueError(
            "gen_args must not set return_dict_in_generate: LLMNormXLogit reads the generated ids itself, and "
            "each result's output_probs holds the model's probability of every output token."
        )
    args["return_dict_in_generate"] = False  # also when the model's generation_config asks for a dict
    args.setdefault("pad_token_id", pad_id)
    ids, mask = pad_batch(prompts, pad_id, side="left")
    width = ids.shape[1]
    with torch.no_grad(), eval_mode(model):
        out = model_generate(input_ids=ids.to(device), attention_mask=mask.to(device), **args)
    if out.shape[0] % len(prompts):
        raise RuntimeError(f"generate() returned {out.shape[0]} sequences for {len(prompts)} prompts.")
    eos = set(_eos_ids(model, args))
    results = []
    for row in out[:, width:].cpu():
        stop = next((k + 1 for k, t in enumerate(row.tolist()) if t in eos), row.numel())
        if stop == 0:
            raise RuntimeError("generate() produced no new token; raise max_new_tokens in gen_args.")
        results.append(row[:stop].clone())
    return results


def pretty_tokens(ids: Tensor, tokenizer: Any) -> List[str]:
    r"""Token strings for output tokens, as Captum's LLM wrappers label them (falls back to ``decode``)."""
    try:  # Captum's private helper: the labels its own LLMAttributionResult rows get
        from captum.attr._core.llm_attr import _convert_ids_to_pretty_tokens
    except ImportError:  # pragma: no cover - a future captum moved it
        return [tokenizer.decode([int(i)]).strip() for i in ids]
    with warnings.catch_warnings():  # it warns, then falls back to per-token decoding, when "\n\n" re-merges
        warnings.simplefilter("ignore", UserWarning)
        return _convert_ids_to_pretty_tokens(ids, tokenizer)
