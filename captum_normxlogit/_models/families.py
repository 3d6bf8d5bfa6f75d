r"""One declarative entry per Hugging Face model family.

Adding a family is one :class:`Family` in :data:`FAMILIES` plus its test row.
Every path is looked up explicitly when a model is wrapped and a missing part
raises; nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from captum_normxlogit._models.adapter import ConfigActivation, Head
from captum_normxlogit._models.tasks import CAUSAL_LM, MASKED_LM, SEQUENCE_CLASSIFICATION

__all__ = ["Family", "FAMILIES"]


@dataclass(frozen=True)
class Family:
    r"""Where one model family keeps its parts.

    Args:
        model_types (tuple of str): ``config.model_type`` values of the family.
        backbone (str): Attribute of the task model holding the base model.
        blocks (str or callable): Path of the block list relative to the backbone,
            or ``callable(model) -> list of modules`` in execution order.
        heads (mapping): Task-model class name (e.g. ``"BertForMaskedLM"``) to
            its :class:`Head`; module paths are relative to the task model.
        decoder (bool, optional): Causal decoder: pass ``use_cache=False``.
            Default: False
        position_ids_from_mask (bool, optional): Pass positions computed from the
            attention mask (see :class:`ModelAdapter`). Default: False
        check (callable, optional): ``check(model)`` raises for configurations
            the entry does not describe. Default: None
    """

    model_types: Tuple[str, ...]
    backbone: str
    blocks: Union[str, Callable[[nn.Module], Sequence[nn.Module]]]
    heads: Mapping[str, Head]
    decoder: bool = False
    position_ids_from_mask: bool = False
    check: Optional[Callable[[nn.Module], None]] = None


def _albert_blocks(model: nn.Module) -> List[nn.Module]:
    # ALBERT calls its shared layer groups once per hidden layer, in this order.
    config: Any = model.config  # Hugging Face attributes: nn.Module's __getattr__ types them Tensor | Module
    groups: Any = model.albert.encoder.albert_layer_groups  # type: ignore[union-attr]
    per_group = config.num_hidden_layers / config.num_hidden_groups
    return [groups[int(i / per_group)] for i in range(config.num_hidden_layers)]


def _deberta_v2_check(model: nn.Module) -> None:
    if getattr(getattr(model.deberta, "encoder", None), "conv", None) is not None:
        raise NotImplementedError(
            "DeBERTa-v2 with conv_kernel_size > 0 adds a convolution after block 0 that is not "
            "part of any block output; pass a custom ModelAdapter if you need it."
        )
    if type(model).__name__ == "DebertaV2ForMaskedLM" and not getattr(model.config, "legacy", True):
        raise NotImplementedError(
            "DebertaV2ForMaskedLM with legacy=False multiplies by the embedding matrix inside its head "
            "(there is no output nn.Linear to read rows of); pass a custom ModelAdapter if you need it."
        )


def _modernbert_check(model: nn.Module) -> None:
    pooling = getattr(model.config, "classifier_pooling", "cls")
    if type(model).__name__ == "ModernBertForSequenceClassification" and pooling != "cls":
        raise NotImplementedError(
            f"ModernBertForSequenceClassification with classifier_pooling={pooling!r} averages all tokens "
            "before its head, so no single token's reading is the model's prediction; only 'cls' pooling "
            "is described by the registry."
        )


_ROBERTA_CLS = Head(SEQUENCE_CLASSIFICATION, ("classifier.dense", torch.tanh), "classifier.out_proj")
_ROBERTA_MLM = Head(MASKED_LM, ("lm_head.dense", nn.functional.gelu, "lm_head.layer_norm"), "lm_head.decoder")


def _decoder(
    model_types: Tuple[str, ...],
    prefix: str,
    backbone: str,
    blocks: str,
    final_norm: Tuple[str, ...],
    causal_lm_class: Optional[str] = None,
    softcap: Optional[str] = None,
    position_ids_from_mask: bool = True,
    classifier: Union[bool, str] = True,
    logit_multiplier: Optional[str] = None,
    logit_divisor: Optional[str] = None,
) -> Family:
    lm_head = Head(CAUSAL_LM, final_norm, "lm_head", softcap, logit_multiplier, logit_divisor)
    heads = {causal_lm_class or f"{prefix}ForCausalLM": lm_head}
    if classifier:  # a string names the classifier class when it is not <prefix>ForSequenceClassification
        name = classifier if isinstance(classifier, str) else f"{prefix}ForSequenceClassification"
        heads[name] = Head(SEQUENCE_CLASSIFICATION, final_norm, "score")
    return Family(model_types, backbone, blocks, heads, decoder=True, position_ids_from_mask=position_ids_from_mask)


FAMILIES: List[Family] = [
    Family(
        ("bert",),
        "bert",
        "encoder.layer",
        {
            "BertForSequenceClassification": Head(
                SEQUENCE_CLASSIFICATION, ("bert.pooler.dense", "bert.pooler.activation"), "classifier"
            ),
            "BertForMaskedLM": Head(MASKED_LM, ("cls.predictions.transform",), "cls.predictions.decoder"),
        },
    ),
    Family(
        ("roberta", "xlm-roberta", "camembert"),
        "roberta",
        "encoder.layer",
        {
            f"{p}For{t}": h
            for p in ("Roberta", "XLMRoberta", "Camembert")
            for t, h in (("SequenceClassification", _ROBERTA_CLS), ("MaskedLM", _ROBERTA_MLM))
        },
    ),
    Family(
        ("distilbert",),
        "distilbert",
        "transformer.layer",
        {
            "DistilBertForSequenceClassification": Head(
                SEQUENCE_CLASSIFICATION, ("pre_classifier", nn.functional.relu), "classifier"
            ),
            "DistilBertForMaskedLM": Head(
                MASKED_LM, ("vocab_transform", "activation", "vocab_layer_norm"), "vocab_projector"
            ),
        },
    ),
    Family(
        ("albert",),
        "albert",
        _albert_blocks,
        {
            "AlbertForSequenceClassification": Head(
                SEQUENCE_CLASSIFICATION, ("albert.pooler", "albert.pooler_activation"), "classifier"
            ),
            "AlbertForMaskedLM": Head(
                MASKED_LM,
                ("predictions.dense", "predictions.activation", "predictions.LayerNorm"),
                "predictions.decoder",
            ),
        },
    ),
    Family(
        ("electra",),
        "electra",
        "encoder.layer",
        {
            "ElectraForSequenceClassification": Head(
                SEQUENCE_CLASSIFICATION, ("classifier.dense", "classifier.activation"), "classifier.out_proj"
            ),
            "ElectraForMaskedLM": Head(MASKED_LM, ("generator_predictions",), "generator_lm_head"),
        },
    ),
    Family(
        ("deberta-v2",),
        "deberta",
        "encoder.layer",
        {
            "DebertaV2ForSequenceClassification": Head(
                SEQUENCE_CLASSIFICATION, ("pooler.dense", ConfigActivation("pooler_hidden_act")), "classifier"
            ),
            "DebertaV2ForMaskedLM": Head(MASKED_LM, ("cls.predictions.transform",), "cls.predictions.decoder"),
        },
        check=_deberta_v2_check,
    ),
    Family(
        ("modernbert",),
        "model",
        "layers",
        {  # the backbone applies final_norm after the last block; the heads read after it
            "ModernBertForSequenceClassification": Head(
                SEQUENCE_CLASSIFICATION, ("model.final_norm", "head"), "classifier"
            ),
            "ModernBertForMaskedLM": Head(MASKED_LM, ("model.final_norm", "head"), "decoder"),
        },
        check=_modernbert_check,
    ),
    Family(
        ("mpnet",),
        "mpnet",
        "encoder.layer",
        {
            "MPNetForSequenceClassification": Head(
                SEQUENCE_CLASSIFICATION, ("classifier.dense", torch.tanh), "classifier.out_proj"
            ),
            "MPNetForMaskedLM": Head(
                MASKED_LM, ("lm_head.dense", nn.functional.gelu, "lm_head.layer_norm"), "lm_head.decoder"
            ),
        },
    ),
    _decoder(("gpt2",), "GPT2", "transformer", "h", ("transformer.ln_f",), causal_lm_class="GPT2LMHeadModel"),
    _decoder(("llama",), "Llama", "model", "layers", ("model.norm",)),
    _decoder(("mistral",), "Mistral", "model", "layers", ("model.norm",)),
    _decoder(("qwen2",), "Qwen2", "model", "layers", ("model.norm",)),
    _decoder(("gemma",), "Gemma", "model", "layers", ("model.norm",)),
    _decoder(("gemma2",), "Gemma2", "model", "layers", ("model.norm",), softcap="final_logit_softcapping"),
    _decoder(
        ("gemma3_text",),
        "Gemma3",
        "model",
        "layers",
        ("model.norm",),
        softcap="final_logit_softcapping",
        classifier="Gemma3TextForSequenceClassification",
    ),
    # Mixture-of-experts decoders: the router and experts live inside each block.
    _decoder(("mixtral",), "Mixtral", "model", "layers", ("model.norm",)),
    _decoder(("qwen2_moe",), "Qwen2Moe", "model", "layers", ("model.norm",)),
    # Heads that scale their logits: Granite divides by logits_scaling, Cohere multiplies by logit_scale.
    _decoder(
        ("granite",), "Granite", "model", "layers", ("model.norm",), classifier=False, logit_divisor="logits_scaling"
    ),
    _decoder(
        ("cohere",), "Cohere", "model", "layers", ("model.norm",), classifier=False, logit_multiplier="logit_scale"
    ),
    _decoder(("phi",), "Phi", "model", "layers", ("model.final_layernorm",)),
    # OPT derives positions from the attention mask itself; its final norm and
    # output projection are absent in some checkpoints (opt-350m).
    _decoder(
        ("opt",),
        "OPT",
        "model",
        "decoder.layers",
        ("model.decoder.final_layer_norm?", "model.decoder.project_out?"),
        position_ids_from_mask=False,
    ),
    _decoder(("gpt_neox",), "GPTNeoX", "gpt_neox", "layers", ("gpt_neox.final_layer_norm",)),
    # Causal LMs only: their sequence classifiers are not tested here, so not registered.
    *(
        _decoder((model_type,), prefix, "model", "layers", ("model.norm",), classifier=False)
        for model_type, prefix in (
            ("qwen3", "Qwen3"),
            ("phi3", "Phi3"),
            ("olmo2", "Olmo2"),
            ("stablelm", "StableLm"),
            ("starcoder2", "Starcoder2"),
        )
    ),
    *(
        _decoder((model_type,), prefix, "transformer", "h", ("transformer.ln_f",), classifier=False)
        for model_type, prefix in (("gptj", "GPTJ"), ("gpt_neo", "GPTNeo"), ("bloom", "Bloom"), ("falcon", "Falcon"))
    ),
]
