r"""NormXLogit as a Captum attribution: final and layer-wise token scores from one forward pass."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import torch
from captum.attr import LayerAttribution
from captum.log import log_usage
from torch import Tensor, nn

from captum_normxlogit._models.adapter import ModelAdapter
from captum_normxlogit._models.registry import adapter_for
from captum_normxlogit._models.verify import assert_verified
from captum_normxlogit._utils.capture import HiddenStates, capture_hidden_states, eval_mode, model_lock
from captum_normxlogit._utils.inputs import (
    ModelInputs,
    TensorOrTuple,
    flatten_layers,
    format_inputs,
    format_output,
    parse_forward_args,
    resolve_target,
)
from captum_normxlogit._utils.model_parts import logits_of, too_long_error, unwrap_model
from captum_normxlogit._utils.padding import is_right_padded

__all__ = ["NormXLogit"]

LayerSpec = Union[None, int, nn.Module, Sequence[Union[int, nn.Module]]]


class NormXLogit(LayerAttribution):
    r"""NormXLogit (Abbasi, Modarres & Pilehvar, EMNLP 2025): a forward-only,
    signed token attribution for any transformer with a prediction head.

    For token ``i`` and target ``y``::

        NormXLogit(x_i) = ||x_i^0||_2 * HoT(x_i^L)[y]

    where ``x_i^0`` is token ``i``'s embedding-layer output (Hugging Face's
    ``hidden_states[0]``: word + position (+ type) embeddings and their norm),
    ``x_i^L`` its last hidden state, and ``HoT`` the model's own head applied to
    that one vector (BERT: pooler dense + tanh, then the classifier; causal LMs:
    the final norm, then the unembedding). The score is the raw signed logit
    scaled by the norm: positive tokens push towards ``y``.

    The layer-wise form reads ``HoT`` on block ``l``'s output instead of the last
    one (the norm factor stays at layer 0), like a logit lens per token. For
    regression heads (one label) the score is ``||x_i^0|| * |HoT(x_i^L) - f(x)|``,
    the distance between the token's own reading and the model's output, as the
    paper writes it: **larger means the token reads further from the
    prediction**; negate it if you want "closest to the prediction" first.

    Everything is computed from one forward pass under ``torch.no_grad()``, in
    eval mode (the model's ``training`` flags are restored afterwards), with
    hooks that are removed even when the pass raises. For language-model heads
    only the target rows of the output layer are read, so no ``(B, T, vocab)``
    tensor is built.

    Calls from several threads on one model are safe: each hooked pass holds
    the model's lock (shared by every ``NormXLogit`` on it), and the hooks act
    only for the calling thread, so the model's own forward passes in other
    threads are unaffected, provided the model is in eval mode; a model in
    training mode is switched to eval mode as a whole for the pass (see
    docs/reliability.md). ``nn.DataParallel``, ``DistributedDataParallel`` and
    ``torch.compile`` wrappers are unwrapped: the wrapped module runs itself.

    Paper: https://arxiv.org/abs/2411.16252

    Args:
        model (nn.Module): A Hugging Face task model (``*ForSequenceClassification``,
            ``*ForCausalLM``, ``*ForMaskedLM`` of a registered family, see
            :func:`captum_normxlogit.supported_models`; any other one through the
            verified automatic adapter) or any model described by ``adapter``.
        layer (None, int, nn.Module or list, optional): ``None`` gives the
            paper's final scores. A transformer block (one of
            ``adapter.blocks``) or an int ``l`` in ``0..L`` reads the head on
            that block's output (hidden state ``l``; 0 is the embedding output);
            a list of them returns a list. Default: None
        multiply_by_inputs (bool, optional): Multiply by the embedding norm
            (NormXLogit). ``False`` gives LogAt alone, the paper's ablation.
            Default: True
        adapter (ModelAdapter, optional): Where the model keeps its parts; looked
            up from ``model.config.model_type`` when None. Default: None
        mask_token_id (int, optional): The ``[MASK]`` id, needed for masked-LM
            heads to locate the predicted position. Default: None
        verify (bool, optional): Check the adapter once against the model's
            own outputs on a small probe (its hidden states against
            ``output_hidden_states``, its head against the model's logits) and
            raise :class:`UnsupportedModelError` naming the failed check. An
            unregistered model's automatic adapter is always verified.
            Default: False

    Example::

        >>> nx = NormXLogit(model)                       # a BertForSequenceClassification
        >>> enc = tokenizer(["a gorgeous , witty movie ."], return_tensors="pt")
        >>> scores = nx.attribute(enc.input_ids, additional_forward_args=(enc.attention_mask,))
        >>> scores.shape                                 # (batch, seq_len)
        >>> ig = IntegratedGradients(nx.forward_func)    # same function, same targets

    Attributes:
        forward_func (callable): The wrapped model as a plain tensor function,
            ``forward_func(inputs, attention_mask=None, token_type_ids=None)``:
            ``input_ids`` ``(B, T)`` or ``inputs_embeds`` ``(B, T, H)`` in, the
            logits ``(B, C)`` of a classifier out, or for a causal LM the
            next-token logits ``(B, V)`` after the last non-pad position (masked
            LM: at the mask position). It is differentiable and leaves the
            model's mode alone: hand it unchanged to ``IntegratedGradients``,
            ``LayerIntegratedGradients``, ``Saliency``, ``InputXGradient`` or
            ``captum.metrics.infidelity`` so every method explains one function.
        adapter (ModelAdapter): Where the model keeps its parts.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: LayerSpec = None,
        multiply_by_inputs: bool = True,
        adapter: Optional[ModelAdapter] = None,
        mask_token_id: Optional[int] = None,
        verify: bool = False,
    ) -> None:
        wrapper, model = model, unwrap_model(model)
        if adapter is None:
            adapter = adapter_for(model)
        elif adapter.model is not model and adapter.model is not wrapper:
            raise ValueError("adapter was built for a different model than the one passed.")
        if verify:
            assert_verified(adapter)
        self.adapter = adapter
        self.mask_token_id = mask_token_id
        self._multiply_by_inputs = multiply_by_inputs
        self._layers: List[Any]
        self._layers, self._layer_is_list = flatten_layers(layer) if layer is not None else ([None], False)
        for spec in self._layers:
            self.layer_index(spec)  # validate now, fail early
        super().__init__(self._forward_func, layer)

    # -- Captum conventions ----------------------------------------------------------------
    @classmethod
    def get_name(cls) -> str:
        r"""The method's display name, as Captum's ``Attribution.get_name`` gives it.

        Returns:
            str: ``"NormXLogit"``.
        """
        return "NormXLogit"

    @property
    def multiplies_by_inputs(self) -> bool:
        r"""Whether scores include the embedding norm (the ``multiply_by_inputs`` argument)."""
        return self._multiply_by_inputs

    def has_convergence_delta(self) -> bool:
        r"""Captum's convergence-delta flag: always False (NormXLogit has no completeness delta).

        Returns:
            bool: ``False``.
        """
        return False

    @property
    def model(self) -> nn.Module:
        r"""The explained model."""
        return self.adapter.model

    @property
    def n_layers(self) -> int:
        r"""Number of transformer blocks ``L``; layer indices run over ``0..L``."""
        return self.adapter.n_layers

    def attribute_future(self) -> None:
        r"""Not offered: NormXLogit runs one synchronous forward pass.

        Raises:
            NotImplementedError: Always; call :meth:`attribute`.
        """
        raise NotImplementedError("NormXLogit runs one synchronous forward pass; attribute_future is not offered.")

    # -- public API -------------------------------------------------------------------------
    @log_usage(part_of_slo=False)
    def attribute(
        self,
        inputs: TensorOrTuple,
        target: Any = None,
        additional_forward_args: Any = None,
        attribute_to_layer_input: bool = False,
        foil: Any = None,
    ) -> Union[TensorOrTuple, List[TensorOrTuple]]:
        r"""Score every token of every example.

        Args:
            inputs (Tensor or tuple[Tensor]): ``input_ids`` of shape ``(B, T)``
                (integer dtype) or ``inputs_embeds`` of shape ``(B, T, H)``
                (float, the vectors the model's input embedding table produces),
                as a tensor or a 1-tuple.
            target (int, list[int], Tensor or None, optional): The class (or
                vocabulary id) whose logit is read, one per example or one for
                all. ``None`` uses the model's own prediction from the same pass:
                the argmax class; for a causal LM the argmax next token after the
                last non-pad position; for a masked LM the argmax id at the
                ``mask_token_id`` position. Regression heads take ``None`` only.
                Default: None
            additional_forward_args (Tensor or tuple, optional): ``attention_mask``
                or ``(attention_mask, token_type_ids)``, positionally, each
                ``(B, T)``. Padding may be on either side. Default: None (no padding)
            attribute_to_layer_input (bool, optional): With a block as ``layer``,
                read the head on the block's input instead of its output.
                Default: False
            foil (int, list[int], Tensor or None, optional): A contrastive
                alternative to ``target`` (same forms, one id per example or one
                for all): the score becomes
                ``||x_i^0|| * (HoT(x_i)[target] - HoT(x_i)[foil])``, both logits
                read from the same pass (the paper's LogAt(Foil) multiplied by
                the norm; with ``multiply_by_inputs=False`` the logit difference
                alone). Positive tokens favour the target over the foil; a foil
                equal to the target scores 0. Not available for regression
                heads. Default: None (no contrast)

        Returns:
            *Tensor* or *tuple[Tensor]* of **attributions**, shape ``(B, T)``,
            float32, signed, with the same structure as ``inputs``; pad
            positions are exactly 0. A list of those when ``layer`` is a list.
        """
        return self._attribute(inputs, target, additional_forward_args, attribute_to_layer_input, foil)[0]

    def _attribute(
        self,
        inputs: TensorOrTuple,
        target: Any,
        additional_forward_args: Any,
        to_input: bool,
        foil: Any,
        keep: bool = False,
    ) -> Tuple[Union[TensorOrTuple, List[TensorOrTuple]], Optional[Tensor]]:
        indices = [self.layer_index(spec, to_input) for spec in self._layers]
        model_inputs = self._validate(inputs, additional_forward_args)
        scores, predicted = self._scores(model_inputs, target, indices, foil, keep_prediction=keep)
        results = [format_output(scores[i], model_inputs.is_tuple) for i in indices]
        return (results if self._layer_is_list else results[0]), predicted

    def attribute_all_layers(
        self, inputs: TensorOrTuple, target: Any = None, additional_forward_args: Any = None, foil: Any = None
    ) -> Tensor:
        r"""Layer-wise scores of every hidden state, from one forward pass.

        Args:
            inputs, target, additional_forward_args, foil: As in :meth:`attribute`.

        Returns:
            *Tensor* of shape ``(B, L + 1, T)``: index 0 reads the head on the
            embedding output, index ``l`` on block ``l``'s output, index ``L``
            equals :meth:`attribute` with ``layer=None``. Pads are 0.
        """
        model_inputs = self._validate(inputs, additional_forward_args)
        indices = list(range(self.n_layers + 1))
        scores, _ = self._scores(model_inputs, target, indices, foil)
        return torch.stack([scores[i] for i in indices], dim=1)

    def embedding_norm(self, inputs: TensorOrTuple, additional_forward_args: Any = None) -> TensorOrTuple:
        r"""The norm factor alone (the paper's "ℓ2 norm" ablation).

        Returns:
            *Tensor* or *tuple[Tensor]*: ``||x_i^0||_2`` of shape ``(B, T)``,
            float32, same structure as ``inputs``; pads are 0.
        """
        model_inputs = self._validate(inputs, additional_forward_args)
        with torch.no_grad(), eval_mode(self.model):
            states = self.hidden_states(model_inputs, wanted={0})
        norm = states[0].float().norm(dim=-1)
        mask = model_inputs.attention_mask.to(norm.device).bool()
        return format_output(torch.where(mask, norm, torch.zeros_like(norm)), model_inputs.is_tuple)

    # -- package-internal API ----------------------------------------------------------------
    # For LLMNormXLogit and the dataset tasks, which build on this class. Names without an
    # underscore, so no other module reads private state; "package-internal" in every docstring:
    # not exported, not in the README, free to change with the package.
    @property
    def layer_indices(self) -> List[int]:
        r"""Package-internal. The hidden-state indices (``0..L``, blocks' outputs) of
        the ``layer`` given at construction, one per entry; ``[L]`` for ``layer=None``."""
        return [self.layer_index(spec) for spec in self._layers]

    @property
    def layer_is_list(self) -> bool:
        r"""Package-internal. Whether ``layer`` was a list (:meth:`attribute` then returns a list)."""
        return self._layer_is_list

    def layer_index(self, spec: Any, attribute_to_layer_input: bool = False) -> int:
        r"""Package-internal. The hidden-state index that a layer specification reads.

        Args:
            spec (None, int or nn.Module): ``None`` (the last layer), a
                hidden-state index ``0..L`` or one of ``adapter.blocks``.
            attribute_to_layer_input (bool, optional): Read the block's input
                instead of its output. Default: False

        Returns:
            int in ``0..L``. Raises ``TypeError`` / ``ValueError`` naming what is wrong.
        """
        n = self.n_layers
        if spec is None:
            if attribute_to_layer_input:
                raise ValueError("attribute_to_layer_input=True needs a block as layer.")
            return n
        if isinstance(spec, bool) or not isinstance(spec, (int, nn.Module)):
            raise TypeError(f"layer must be None, an int, a transformer block or a list of them, got {spec!r}.")
        if isinstance(spec, int):
            if not 0 <= spec <= n:
                raise ValueError(f"layer index {spec} out of range: this model has hidden states 0..{n}.")
            if attribute_to_layer_input:
                if spec == 0:
                    raise ValueError("layer 0 (the embedding output) has no input hidden state.")
                return spec - 1
            return spec
        positions = [i for i, block in enumerate(self.adapter.blocks) if block is spec]
        if not positions:
            raise ValueError(
                f"layer {type(spec).__name__} is not one of the model's {n} transformer blocks "
                "(adapter.blocks); pass one of them or an int index 0..L."
            )
        if len(positions) > 1:
            raise ValueError(
                f"layer {type(spec).__name__} is shared by layers {[p + 1 for p in positions]}; "
                "pass an int index instead."
            )
        return positions[0] if attribute_to_layer_input else positions[0] + 1

    def attribute_with_prediction(
        self, inputs: TensorOrTuple, target: Any = None, additional_forward_args: Any = None, foil: Any = None
    ) -> Tuple[Any, Tensor]:
        r"""Package-internal. :meth:`attribute` and the model's own output, both from its one pass.

        For the dataset runs, which store the probabilities beside the scores: the
        prediction is read where :meth:`attribute` reads it for ``target=None``
        (the model's logits; for a language-model head the head on the last
        hidden state at the last real token or at ``[MASK]``), also when a
        ``target`` is given. No second pass and no hook of the caller's.

        Args:
            inputs, target, additional_forward_args, foil: As in :meth:`attribute`.

        Returns:
            *(attributions, logits)*: the attributions exactly as :meth:`attribute`
            returns them, and a float32 ``(B, C)`` / ``(B, V)`` tensor of the
            model's output (``(B, 1)`` for a regression head), detached, on the
            model's device.
        """
        attributions, predicted = self._attribute(inputs, target, additional_forward_args, False, foil, keep=True)
        assert predicted is not None  # keep=True computes it
        return attributions, predicted.detach().float()

    def embedding_table(self) -> Optional[nn.Embedding]:
        r"""Package-internal. The model's input embedding table, or None where it is not an ``nn.Embedding``."""
        get = getattr(self.model, "get_input_embeddings", None)
        table = get() if callable(get) else None
        return table if isinstance(table, nn.Embedding) else None

    def hidden_states(self, inputs: ModelInputs, wanted: Set[int]) -> HiddenStates:
        r"""Package-internal. One forward pass that keeps the hidden states ``wanted``.

        The inputs are used as given (no checks: pass what :meth:`attribute`
        would accept); gradient and mode are the caller's (``torch.no_grad()``,
        ``eval_mode``). The model is locked for the pass and a too-long input
        gets a sentence that says so.

        Args:
            inputs (ModelInputs): Ids ``(B, T)`` or embeddings ``(B, T, H)``, mask, token types.
            wanted (set of int): Hidden-state indices in ``0..L`` to keep.

        Returns:
            HiddenStates: ``states[l]`` is ``(B, T, H)``; ``states.output`` the model's output.
        """
        adapter = self.adapter
        kwargs = adapter.forward_kwargs(inputs.tensor, inputs.attention_mask, inputs.token_type_ids)
        with model_lock(self.model), capture_hidden_states(adapter.blocks, wanted) as states:
            try:
                states.output = adapter.runner(**kwargs)
            except (IndexError, RuntimeError) as error:
                sentence = too_long_error(self.model, inputs.tensor.shape[1])
                if sentence is not None:
                    raise sentence from error
                raise
        states.check_complete()
        return states

    # -- internals -------------------------------------------------------------------------
    def _check_inputs(self, inputs: TensorOrTuple, additional_forward_args: Any) -> ModelInputs:
        r"""Form, dtype, range and device of the inputs, mask and token types (no padding rules)."""
        table = self.embedding_table()
        dim = table.embedding_dim if table is not None else -1
        tensor, is_tuple = format_inputs(
            inputs,
            dim,
            table.num_embeddings if table is not None else None,
            table.weight.dtype if table is not None else None,
        )
        type_vocab_size = getattr(getattr(self.model, "config", None), "type_vocab_size", None)
        return parse_forward_args(
            additional_forward_args, tensor, is_tuple, type_vocab_size if isinstance(type_vocab_size, int) else None
        )

    def _validate(self, inputs: TensorOrTuple, additional_forward_args: Any) -> ModelInputs:
        model_inputs = self._check_inputs(inputs, additional_forward_args)
        if self.adapter.requires_right_padding:
            mask = model_inputs.attention_mask
            left = (~is_right_padded(mask)).nonzero().flatten().tolist()
            if left:
                raise ValueError(
                    f"Examples {left} are not right-padded, but {type(self.model).__name__} is an encoder: "
                    "its classifier reads position 0 and most encoders count positions from the first slot, "
                    "so left padding changes the model's output. Pad on the right "
                    "(tokenizer.padding_side = 'right')."
                )
        return model_inputs

    def _prediction_position(self, inputs: ModelInputs) -> Tensor:
        r"""Where the head's prediction is read, ``(B,)``: last real token or [MASK]."""
        mask = inputs.attention_mask
        if self.adapter.prediction_at == "last_token":
            positions = torch.arange(mask.shape[1], device=mask.device)
            return (positions * mask).argmax(-1)
        if self.mask_token_id is None:
            raise ValueError(
                "A masked-LM head needs mask_token_id=tokenizer.mask_token_id to find the predicted position."
            )
        if inputs.is_embeds:
            raise ValueError("A masked-LM head locates [MASK] in input_ids; pass ids, not inputs_embeds.")
        is_mask = inputs.tensor == self.mask_token_id
        counts = is_mask.sum(-1)
        bad = (counts != 1).nonzero().flatten().tolist()
        if bad:
            raise ValueError(
                f"Examples {bad} hold {counts[bad].tolist()} mask tokens (id {self.mask_token_id}); "
                "a masked-LM prediction needs exactly one per example."
            )
        return is_mask.long().argmax(-1)

    def _predicted_logits(self, states: HiddenStates, position: Optional[Tensor]) -> Tensor:
        r"""The model's own output for each example: ``(B, C)`` or ``(B, V)``.

        ``position`` is :meth:`_prediction_position`, unused for ``prediction_at="model_output"``.
        """
        if self.adapter.prediction_at == "model_output":
            return logits_of(states.output)
        last = states[self.n_layers]
        assert position is not None  # _scores computes it whenever the head reads the last state
        position = position.to(last.device)
        return self.adapter.logits(last[torch.arange(last.shape[0], device=last.device), position])

    def _scores(
        self, inputs: ModelInputs, target: Any, indices: List[int], foil: Any = None, keep_prediction: bool = False
    ) -> Tuple[Dict[int, Tensor], Optional[Tensor]]:
        r"""Scores per hidden-state index, and the model's output when it was read (always with ``keep_prediction``)."""
        adapter = self.adapter
        if adapter.is_regression and target is not None:
            raise ValueError("A regression head (one label) has no classes: pass target=None.")
        if adapter.is_regression and foil is not None:
            raise ValueError("A regression head (one label) has no classes to contrast: pass foil=None.")
        # Everything that can be wrong with the request raises before the model runs.
        target_ids = None
        if target is not None:
            target_ids = resolve_target(target, inputs.tensor.shape[0], adapter.num_outputs)
        foil_ids = None
        if foil is not None:
            foil_ids = resolve_target(foil, inputs.tensor.shape[0], adapter.num_outputs, name="foil")
        needs_prediction = target is None or adapter.is_regression or keep_prediction
        by_head = needs_prediction and adapter.prediction_at != "model_output"
        position = self._prediction_position(inputs) if by_head else None
        wanted = set(indices) | {0} | ({self.n_layers} if by_head else set())
        with torch.no_grad(), eval_mode(self.model):
            states = self.hidden_states(inputs, wanted)
            predicted = self._predicted_logits(states, position) if needs_prediction else None
            if target_ids is None:
                assert predicted is not None  # no target: needs_prediction
                target_ids = predicted.argmax(-1)
            norm = states[0].float().norm(dim=-1)
            mask = inputs.attention_mask.to(norm.device).bool()
            scores: Dict[int, Tensor] = {}
            for index in dict.fromkeys(indices):
                if foil_ids is None:
                    logat = adapter.target_logits(states[index], target_ids).to(norm.device)
                else:  # both logits from one matmul over the same hidden state
                    pair = torch.stack([target_ids, foil_ids.to(target_ids.device)], dim=-1)
                    both = adapter.token_logits(states[index], pair).to(norm.device)
                    logat = both[..., 0] - both[..., 1]
                if adapter.is_regression:  # distance to the model's own output, as the paper writes it
                    assert predicted is not None  # a regression head: needs_prediction
                    logat = (logat - predicted[:, :1].float().to(norm.device)).abs()
                value = norm * logat if self._multiply_by_inputs else logat
                scores[index] = torch.where(mask, value, torch.zeros_like(value))
        return scores, predicted

    def _forward_func(
        self, inputs: Tensor, attention_mask: Optional[Tensor] = None, token_type_ids: Optional[Tensor] = None
    ) -> Tensor:
        extras = (attention_mask,) if token_type_ids is None else (attention_mask, token_type_ids)
        # the same checks as attribute (form, dtype, 0/1 mask, segment range), not the padding rules:
        # gradient methods and the metrics pass perturbed batches through here
        model_inputs = self._check_inputs(inputs, extras)
        if self.adapter.prediction_at == "model_output":
            return self._predicted_logits(self.hidden_states(model_inputs, set()), None)
        position = self._prediction_position(model_inputs)
        return self._predicted_logits(self.hidden_states(model_inputs, {self.n_layers}), position)
