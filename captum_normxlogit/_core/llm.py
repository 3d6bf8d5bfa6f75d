r"""NormXLogit for text generation: every (generated token x prompt token) score from one teacher-forced pass.

Row alignment in a causal LM
----------------------------
A decoder's hidden state ``h_i`` at position ``i`` sees tokens ``0..i`` only, and the head read on it
predicts token ``i + 1``. Prompt + target is ``x_0 .. x_{P-1}, y_0 .. y_{m-1}``; target token ``y_j``
sits at position ``p_j = P + j`` and is predicted from ``h_{p_j - 1}``. Its row is

    token_attr[j, i] = ||x_i^0||_2 * HoT(h_i)[y_j]        for every input position i < p_j

exactly what ``NormXLogit.attribute(prompt + y_<j, target=y_j)`` gives: each input token's *own*
hidden state read by the head for ``y_j`` (a logit-lens reading; only the last position before
``y_j`` sees the whole context, and no prompt token sees ``y_<j``). Since ``h_i`` does not depend on
later tokens, one pass over ``prompt + y[:-1]`` holds every row: the ``m`` target rows of the
unembedding are gathered and read against every position in one ``(T, m)`` matmul; no
``(T, vocab)`` tensor is built.

Two consequences to keep in mind. A prompt column never sees ``y_<j``, so in the prompt columns
row ``j`` depends on the token id ``y_j`` only: two equal output tokens get equal prompt rows
(``include_generated=True`` adds the columns that do carry the generated context). And raw LM
logits are not centred: a frequent token gets a large positive logit at most positions, so rows are
often positive everywhere; a ``foil`` (target minus foil, the paper's LogAt(Foil)) removes what the
two tokens share.

Captum's convention (``LLMAttribution``, ``LLMGradientAttribution``): the inputs are the prompt's
interpretable tokens (``TextTokenInput.values``, after ``skip_tokens``); generated tokens are outputs,
not inputs. ``seq_attr`` ``(n_input_tokens,)`` is ``token_attr.sum(0)``, and ``token_attr`` is
``(n_output_tokens, n_input_tokens)``. ``include_generated=True`` adds the generated tokens
``y_0 .. y_{m-2}`` as extra input columns; entries at positions ``>= p_j`` (not inputs of step ``j``)
are exactly 0.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

import torch
from captum.attr import LLMAttributionResult, TextTokenInput
from torch import Tensor, nn

from captum_normxlogit._core.llm_inputs import (
    PromptLike,
    TargetLike,
    align_foil,
    as_ids,
    check_prompt_ids,
    generate,
    pretty_tokens,
    prompt_input,
    sequences_per_prompt,
    target_ids,
)
from captum_normxlogit._core.normxlogit import NormXLogit
from captum_normxlogit._models.tasks import CAUSAL_LM
from captum_normxlogit._utils.capture import eval_mode
from captum_normxlogit._utils.inputs import ModelInputs
from captum_normxlogit._utils.padding import pad_batch, pad_token_id_or_eos

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["LLMLayerAttributionResult", "LLMNormXLogit"]


@dataclass
class LLMLayerAttributionResult:
    r"""Layer-wise NormXLogit for every generated token, from one pass.

    Attributes:
        scores (Tensor): ``(n_output_tokens, n_layers, n_input_tokens)``;
            ``scores[j, k]`` reads the head for output token ``j`` on hidden state
            ``layers[k]`` (0 = embedding output, ``L`` = last block) of every input token.
        layers (list[int]): The hidden-state index of each row of ``scores[j]``.
        input_tokens (list[str]): Column labels (as in ``LLMAttributionResult``).
        output_tokens (list[str]): The explained tokens, one per ``scores[j]``.
    """

    scores: Tensor
    layers: List[int]
    input_tokens: List[str]
    output_tokens: List[str]

    def plot_layer_heatmap(self, output_index: int = 0, *, ax: Optional[Axes] = None) -> Figure:
        r"""Deprecated: use ``captum_normxlogit.visualization.plot_llm_layer_heatmap(result, j)``.

        Heatmap ``(layers, input tokens)`` for output token ``output_index``; warns with a
        ``DeprecationWarning`` and draws the same figure as the view.

        Returns:
            *matplotlib.figure.Figure* from
            :func:`captum_normxlogit.visualization.plot_llm_layer_heatmap`.
        """
        warnings.warn(
            "LLMLayerAttributionResult.plot_layer_heatmap(j) is deprecated and will be removed; use "
            "captum_normxlogit.visualization.plot_llm_layer_heatmap(result, j).",
            DeprecationWarning,
            stacklevel=2,
        )
        # The core does not import the views (the layering contract); this shim looks the view up at
        # call time only, until it is removed.
        view = importlib.import_module("captum_normxlogit.visualization.heatmap")
        return view.plot_llm_layer_heatmap(self, output_index, ax=ax)


class LLMNormXLogit:
    r"""NormXLogit for LLM generations, returning Captum's own ``LLMAttributionResult``.

    Where Captum's ``LLMGradientAttribution`` runs one gradient attribution per
    output token (and ``LLMAttribution`` one perturbed generation per feature),
    this runs the model once, teacher-forced on prompt + target, and reads every
    row of ``token_attr`` from that pass (see the module docstring for how rows
    align with positions). ``plot_token_attr()`` and ``plot_seq_attr()`` work
    unchanged on the result.

    Args:
        attr (NormXLogit or nn.Module): A :class:`NormXLogit` on a causal LM
            (its ``layer`` and ``multiply_by_inputs`` apply; ``layer`` must not
            be a list), or the causal LM itself (wrapped in ``NormXLogit(model)``).
        tokenizer: A Hugging Face tokenizer (Captum's ``TokenizerLike``) for the model.

    Example::

        >>> llm_nx = LLMNormXLogit(NormXLogit(model), tokenizer)
        >>> res = llm_nx.attribute("The capital of France is", gen_args={"max_new_tokens": 5})
        >>> res.token_attr.shape                       # (n_output_tokens, n_input_tokens)
        >>> fig, ax = res.plot_token_attr()
    """

    def __init__(self, attr: Union[NormXLogit, nn.Module], tokenizer: Any) -> None:
        if isinstance(attr, nn.Module):
            attr = NormXLogit(attr)
        if not isinstance(attr, NormXLogit):
            raise TypeError(f"attr must be a NormXLogit or a causal LM, got {type(attr).__name__}.")
        if attr.adapter.task != CAUSAL_LM:
            raise ValueError(
                f"LLMNormXLogit explains generations of a causal LM; {type(attr.model).__name__} has a "
                f"{attr.adapter.task!r} head. Use NormXLogit.attribute for classifiers and masked LMs."
            )
        if attr.layer_is_list:
            raise ValueError("LLMNormXLogit reads one layer; for several use attribute_layers(layers=[...]).")
        for name in ("encode", "decode", "convert_ids_to_tokens"):
            if not callable(getattr(tokenizer, name, None)):
                raise TypeError(f"tokenizer has no {name}(); pass the model's Hugging Face tokenizer.")
        self.attr = attr
        self.tokenizer = tokenizer
        self._layer = attr.layer_indices[0]

    @property
    def model(self) -> nn.Module:
        r"""The explained causal LM."""
        return self.attr.model

    # -- public API -------------------------------------------------------------------------
    def attribute(
        self,
        inp: PromptLike,
        target: TargetLike = None,
        gen_args: Optional[Dict[str, Any]] = None,
        foil: Any = None,
        include_generated: bool = False,
    ) -> LLMAttributionResult:
        r"""Score every prompt token for every output token, from one teacher-forced pass.

        Args:
            inp (TextTokenInput or str): The prompt; a string becomes
                ``TextTokenInput(inp, tokenizer)``. ``skip_tokens`` drop columns.
            target (str, Tensor, list[int] or None, optional): The output to
                explain. A string is encoded without special tokens (as Captum
                does); ids are used as given. ``None`` generates it with
                ``model.generate(**gen_args)`` (greedy, 25 new tokens by default;
                stopped after the first end-of-sequence token). Default: None
            gen_args (dict, optional): Keyword arguments of ``model.generate``
                when ``target`` is None; ``return_dict_in_generate`` is refused,
                and ``num_return_sequences > 1`` needs :meth:`attribute_batch`
                (one result per generation). Default: None (Captum's defaults)
            foil (str, int, Tensor, list[int] or None, optional): Contrast each
                target token with a foil: the score becomes
                ``||x_i^0|| * (HoT(h_i)[y_j] - HoT(h_i)[foil_j])`` from the same
                pass. One token is used for every row; ``m`` tokens (a string or
                ids as long as the target) row by row. Default: None
            include_generated (bool, optional): Also give the generated tokens
                ``y_0 .. y_{m-2}`` a column each (after the prompt columns);
                cells ``[j, P + k]`` with ``k >= j`` are 0. Default: False (Captum's
                convention: inputs are the prompt's tokens)

        Returns:
            *LLMAttributionResult* with ``token_attr`` ``(n_output_tokens,
            n_input_tokens)`` (signed: positive pushes towards the output token),
            ``seq_attr = token_attr.sum(0)``, ``input_tokens`` =
            ``inp.values`` (plus the generated tokens with ``include_generated``),
            ``output_tokens`` labelled as Captum labels them, and ``output_probs``
            ``(n_output_tokens,)``: the model's probability of each output token
            given the prompt and the previous output tokens (same pass).
        """
        if isinstance(target, (list, tuple)) and target and not isinstance(target[0], int):
            raise TypeError("attribute explains one prompt; for several prompts use attribute_batch.")
        self._one_sequence(target, gen_args)
        return self.attribute_batch([inp], None if target is None else [target], gen_args, foil, include_generated)[0]

    def attribute_batch(
        self,
        inps: Sequence[PromptLike],
        targets: Optional[Sequence[TargetLike]] = None,
        gen_args: Optional[Dict[str, Any]] = None,
        foil: Any = None,
        include_generated: bool = False,
    ) -> List[LLMAttributionResult]:
        r""":meth:`attribute` for several prompts of any lengths, in one left-padded pass.

        Each result equals the one :meth:`attribute` gives for that prompt alone
        (positions come from the attention mask, so padding changes nothing).

        Args:
            inps (sequence of TextTokenInput or str): The prompts.
            targets (sequence or None, optional): One target per prompt (forms as
                in :meth:`attribute`); ``None`` generates all of them in one
                left-padded ``generate`` call. Default: None
            gen_args, include_generated: As in :meth:`attribute`.
            foil (optional): One foil for every prompt (forms as in
                :meth:`attribute`), or, with several prompts, a list holding one
                per prompt (a list is always read per prompt then). Default: None

        Returns:
            *list[LLMAttributionResult]*, one per prompt, in order. When ``gen_args``
            (or the model's ``generation_config``) asks for ``num_return_sequences = n``,
            ``n`` per prompt, grouped by prompt (``results[k]`` explains generation
            ``k % n`` of prompt ``k // n``; its ``inp`` is that prompt).
        """
        prompts, targets_, foils = self._prepare(inps, targets, gen_args, foil)
        mats, probs = self._pass(prompts, targets_, foils, [self._layer], include_generated)
        results = []
        for b, inp in enumerate(prompts):
            token_attr = mats[b][self._layer]
            results.append(
                LLMAttributionResult(
                    seq_attr=token_attr.sum(0),
                    token_attr=token_attr,
                    input_tokens=self._input_tokens(inp, targets_[b], include_generated),
                    output_tokens=pretty_tokens(targets_[b], self.tokenizer),
                    output_probs=probs[b],
                    inp=inp,
                )
            )
        return results

    def attribute_layers(
        self,
        inp: PromptLike,
        target: TargetLike = None,
        gen_args: Optional[Dict[str, Any]] = None,
        foil: Any = None,
        layers: Optional[Sequence[Union[int, nn.Module]]] = None,
    ) -> LLMLayerAttributionResult:
        r"""The layer-wise view: every requested hidden state for every output token, from one pass.

        The head (final norm, then the unembedding rows) is applied once to
        each block's output; only the requested hidden states are kept.

        Args:
            inp, target, gen_args, foil: As in :meth:`attribute`.
            layers (list of int or block, optional): Hidden-state indices
                ``0..L`` (0 = embedding output) or transformer blocks. Default:
                None (all ``L + 1``)

        Returns:
            :class:`LLMLayerAttributionResult` with ``scores`` of shape
            ``(n_output_tokens, n_layers, n_input_tokens)`` and
            ``captum_normxlogit.visualization.plot_llm_layer_heatmap(result, j)``
            for a ``(layers, tokens)`` figure.
        """
        if layers is None:
            indices = list(range(self.attr.n_layers + 1))
        else:
            if isinstance(layers, (int, nn.Module)) or not len(layers):
                raise ValueError("layers must be a non-empty list of hidden-state indices or blocks (or None).")
            indices = [self.attr.layer_index(spec) for spec in layers]
        self._one_sequence(target, gen_args)
        prompts, targets_, foils = self._prepare([inp], None if target is None else [target], gen_args, foil)
        mats, _ = self._pass(prompts, targets_, foils, indices, include_generated=False)
        return LLMLayerAttributionResult(
            scores=torch.stack([mats[0][i] for i in indices], dim=1),
            layers=indices,
            input_tokens=list(prompts[0].values),
            output_tokens=pretty_tokens(targets_[0], self.tokenizer),
        )

    # -- internals -------------------------------------------------------------------------
    def _one_sequence(self, target: Any, gen_args: Any) -> None:
        n = sequences_per_prompt(self.model, gen_args) if target is None else 1
        if n != 1:
            raise ValueError(
                f"num_return_sequences={n} gives {n} generations of the one prompt, and this method returns one "
                "result: use attribute_batch([inp], gen_args=...), which returns one result per generation."
            )

    def _prepare(self, inps: Any, targets: Any, gen_args: Any, foil: Any):
        if isinstance(inps, (str, TextTokenInput)) or not isinstance(inps, Sequence) or not len(inps):
            raise TypeError("inps must be a non-empty list of prompts (strings or TextTokenInput).")
        prompts = [prompt_input(inp, self.tokenizer) for inp in inps]
        table = self.attr.embedding_table()
        vocab_size = table.num_embeddings if table is not None else self.attr.adapter.num_outputs
        for index, prompt in enumerate(prompts):
            check_prompt_ids(prompt, index, vocab_size)
        vocab = self.attr.adapter.num_outputs
        per_prompt_foil = isinstance(foil, list) and len(inps) > 1
        if per_prompt_foil and len(foil) != len(inps):
            raise ValueError(f"foil is a list of {len(foil)} for {len(inps)} prompts: pass one foil or one per prompt.")
        foil_specs = foil if per_prompt_foil else [foil] * len(inps)
        if any(spec is not None for spec in foil_specs) and any(spec is None for spec in foil_specs):
            raise ValueError("Give a foil for every prompt or for none.")
        # the foil's form is checked before generating; its length once the targets are known
        parsed = [None if spec is None else as_ids(spec, self.tokenizer, "foil", vocab) for spec in foil_specs]
        if targets is None:
            ids = [p.inp_tensor[0] for p in prompts]
            targets_ = generate(self.model, ids, gen_args, self._pad_id(), self.attr.adapter.input_device())
            n = len(targets_) // len(prompts)  # num_return_sequences: n generations per prompt, grouped by prompt
            prompts = [p for p in prompts for _ in range(n)]
            parsed = [f for f in parsed for _ in range(n)]
        else:
            if gen_args is not None:
                raise ValueError("gen_args is used only to generate the target; pass target=None to generate.")
            if isinstance(targets, (str, Tensor)) or len(targets) != len(prompts):
                raise ValueError(f"targets must be a list with one target per prompt ({len(prompts)}).")
            targets_ = [target_ids(t, self.tokenizer, vocab) for t in targets]
        given = [f for f in parsed if f is not None]
        foils = None
        if given:  # then one per prompt: a foil for every prompt or for none (checked above)
            foils = [align_foil(f, t.numel()) for f, t in zip(given, targets_)]
        return prompts, targets_, foils

    def _pad_id(self) -> int:
        pad = pad_token_id_or_eos(self.tokenizer)
        return int(pad) if pad is not None and 0 <= int(pad) < self.attr.adapter.num_outputs else 0

    def _input_tokens(self, inp: TextTokenInput, target: Tensor, include_generated: bool) -> List[str]:
        tokens = list(inp.values)
        if include_generated:
            tokens += list(self.tokenizer.convert_ids_to_tokens(target[:-1].tolist()))
        return tokens

    def _pass(
        self,
        prompts: List[TextTokenInput],
        targets: List[Tensor],
        foils: Optional[List[Tensor]],
        indices: List[int],
        include_generated: bool,
    ):
        r"""One teacher-forced pass over every ``prompt + target[:-1]``, left-padded.

        Returns ``(mats, probs)``: ``mats[b][index]`` is ``(m_b, n_columns_b)``,
        ``probs[b]`` is ``(m_b,)``.
        """
        nx, adapter = self.attr, self.attr.adapter
        L = nx.n_layers
        seqs = [torch.cat([p.inp_tensor[0].long().cpu(), t[:-1]]) for p, t in zip(prompts, targets)]
        width, B, K = max(s.numel() for s in seqs), len(seqs), max(t.numel() for t in targets)
        ids, mask = pad_batch(seqs, self._pad_id(), side="left", width=width)
        read, _ = pad_batch(targets, 0, width=K)  # ids whose unembedding rows are gathered; extras are 0
        if foils is not None:
            foil_read, _ = pad_batch(foils, 0, width=K)
            read = torch.cat([read, foil_read], dim=1)  # target and foil logits from one matmul
        with torch.no_grad(), eval_mode(nx.model):
            states = nx.hidden_states(ModelInputs(ids, mask, None, False), set(indices) | {0, L})
            norm = states[0].float().norm(dim=-1)  # (B, W)
            probs = []
            for b, (p, t) in enumerate(zip(prompts, targets)):
                # h at p_j - 1 predicts y_j: positions P-1 .. P+m-2 of this row (after its left padding)
                start = width - seqs[b].numel() + p.inp_tensor.shape[1] - 1
                logits = adapter.logits(states[L][b, start : start + t.numel()]).float()
                probs.append(logits.log_softmax(-1).gather(-1, t.to(logits.device)[:, None])[:, 0].exp().cpu())
            mats: List[Dict[int, Tensor]] = [{} for _ in range(B)]
            for index in dict.fromkeys(indices):
                value = adapter.token_logits(states[index], read).to(norm.device)  # (B, W, K or 2K)
                if foils is not None:
                    value = value[..., :K] - value[..., K:]
                if nx.multiplies_by_inputs:
                    value = norm.unsqueeze(-1) * value
                for b, (p, t) in enumerate(zip(prompts, targets)):
                    mats[b][index] = self._columns(value[b], seqs[b].numel(), p, t.numel(), include_generated)
        return mats, probs

    @staticmethod
    def _columns(value: Tensor, n_seq: int, inp: TextTokenInput, m: int, include_generated: bool) -> Tensor:
        r"""Cut one row's ``(W, K)`` scores to ``(m, n_columns)`` in Captum's layout."""
        P = inp.inp_tensor.shape[1]
        width = value.shape[0]
        n_cols = n_seq if include_generated else P
        mat = value[width - n_seq : width - n_seq + n_cols, :m].T.float().cpu()  # (m, n_cols)
        # position i is an input of step j only if i < p_j = P + j
        allowed = torch.arange(n_cols)[None, :] < (P + torch.arange(m))[:, None]
        mat = torch.where(allowed, mat, torch.zeros_like(mat))
        keep = torch.ones(n_cols, dtype=torch.bool)
        if inp.itp_mask is not None:
            keep[:P] = inp.itp_mask[0].bool().cpu()
        return mat[:, keep].contiguous()
