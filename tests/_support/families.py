"""Tiny, seeded Hugging Face models of every supported family, built from configs only, and padded batches.

Used by the reference-equality suite (tests/_core/test_normxlogit_reference.py) and the property, contrastive,
LLM and automatic-adapter tests. Nothing here imports
`captum_normxlogit`: the model registry below names each model's transformer blocks straight from
the Hugging Face module tree, so the tests do not depend on the implementation's own adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import transformers as T

VOCAB = 99
PAD = 0  # pad id of every tiny model (decoder classifiers pool the last token != PAD)
MASK = 3  # [MASK] id of the tiny masked LMs
LOW_ID = 5  # real token ids are drawn from [LOW_ID, VOCAB)
LENGTHS = (7, 4, 6)
INIT = 0.2  # initializer_range: larger than HF's 0.02 so head logits are O(1), not O(1e-2)

_ENC: dict[str, Any] = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    max_position_embeddings=64,
    initializer_range=INIT,
    pad_token_id=PAD,
)
_DEC: dict[str, Any] = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    initializer_range=INIT,
    pad_token_id=PAD,
)


def _seeded(build: Callable[[], T.PreTrainedModel], seed: int) -> T.PreTrainedModel:
    torch.manual_seed(seed)
    model = build()
    return model.eval()


# ----------------------------------------------------------------------------- factories
def _bert_cfg(**kw):
    return T.BertConfig(**{**_ENC, **kw})


def _roberta_cfg(**kw):
    return T.RobertaConfig(**{**_ENC, "type_vocab_size": 1, **kw})


def _xlmr_cfg(**kw):
    return T.XLMRobertaConfig(**{**_ENC, "type_vocab_size": 1, **kw})


def _distil_cfg(**kw):
    return T.DistilBertConfig(
        vocab_size=VOCAB,
        dim=32,
        n_layers=2,
        n_heads=4,
        hidden_dim=37,
        dropout=0.0,
        attention_dropout=0.0,
        seq_classif_dropout=0.0,
        max_position_embeddings=64,
        initializer_range=INIT,
        pad_token_id=PAD,
        **kw,
    )


def _albert_cfg(**kw):
    return T.AlbertConfig(
        **{
            **_ENC,
            "embedding_size": 16,
            "num_hidden_layers": 3,
            "num_hidden_groups": 1,
            "inner_group_num": 1,
            "classifier_dropout_prob": 0.0,
            **kw,
        }
    )


def _electra_cfg(**kw):
    return T.ElectraConfig(**{**_ENC, "embedding_size": 16, **kw})


def _deberta_cfg(**kw):
    return T.DebertaV2Config(
        **{
            **_ENC,
            "type_vocab_size": 2,
            "relative_attention": True,
            "position_biased_input": False,
            "pos_att_type": ["p2c", "c2p"],
            "max_relative_positions": -1,
            "pooler_dropout": 0.0,
            **kw,
        }
    )


def _llama_cfg(cls=T.LlamaConfig, **kw):
    return cls(**{**_DEC, "num_key_value_heads": 2, **kw})


def _modernbert_cfg(**kw):
    return T.ModernBertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        initializer_range=INIT,
        pad_token_id=PAD,
        bos_token_id=1,
        eos_token_id=2,
        cls_token_id=1,
        sep_token_id=2,
        embedding_dropout=0.0,
        attention_dropout=0.0,
        mlp_dropout=0.0,
        classifier_dropout=0.0,
        **kw,
    )


def _gemma3_cfg(**kw):
    return _llama_cfg(T.Gemma3TextConfig, head_dim=8, query_pre_attn_scalar=8, sliding_window=4, **kw)


# Mixture of experts: transformers' default CPU kernel (grouped_mm) needs 16-byte aligned rows, so the
# expert widths are multiples of 4 floats (37 raises "strides should be multiple of 16 bytes").
def _mixtral_cfg(**kw):
    return _llama_cfg(
        T.MixtralConfig, intermediate_size=48, num_local_experts=4, num_experts_per_tok=2, sliding_window=None, **kw
    )


def _qwen2moe_cfg(**kw):
    return _llama_cfg(
        T.Qwen2MoeConfig,
        intermediate_size=48,
        moe_intermediate_size=48,
        shared_expert_intermediate_size=48,
        num_experts=4,
        num_experts_per_tok=2,
        **kw,
    )


FACTORIES: dict[str, Callable[[], T.PreTrainedModel]] = {
    # sequence classifiers (3 labels)
    "bert_cls": lambda: T.BertForSequenceClassification(_bert_cfg(num_labels=3)),
    "roberta_cls": lambda: T.RobertaForSequenceClassification(_roberta_cfg(num_labels=3)),
    "xlmr_cls": lambda: T.XLMRobertaForSequenceClassification(_xlmr_cfg(num_labels=3)),
    "distilbert_cls": lambda: T.DistilBertForSequenceClassification(_distil_cfg(num_labels=3)),
    "albert_cls": lambda: T.AlbertForSequenceClassification(_albert_cfg(num_labels=3)),
    "electra_cls": lambda: T.ElectraForSequenceClassification(_electra_cfg(num_labels=3)),
    "deberta_cls": lambda: T.DebertaV2ForSequenceClassification(_deberta_cfg(num_labels=3)),
    # num_labels (twice below): a PretrainedConfig keyword that these configs' typed signatures leave out.
    "gpt2_cls": lambda: T.GPT2ForSequenceClassification(
        T.GPT2Config(  # type: ignore[call-arg]
            vocab_size=VOCAB,
            n_embd=32,
            n_layer=2,
            n_head=4,
            n_inner=37,
            n_positions=64,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            initializer_range=INIT,
            pad_token_id=PAD,
            bos_token_id=2,
            eos_token_id=2,
            num_labels=3,
        )
    ),
    "llama_cls": lambda: T.LlamaForSequenceClassification(_llama_cfg(num_labels=3)),
    "mistral_cls": lambda: T.MistralForSequenceClassification(_llama_cfg(T.MistralConfig, num_labels=3)),
    "qwen2_cls": lambda: T.Qwen2ForSequenceClassification(_llama_cfg(T.Qwen2Config, num_labels=3)),
    "gemma_cls": lambda: T.GemmaForSequenceClassification(_llama_cfg(T.GemmaConfig, head_dim=8, num_labels=3)),
    "gemma2_cls": lambda: T.Gemma2ForSequenceClassification(
        _llama_cfg(T.Gemma2Config, head_dim=8, query_pre_attn_scalar=8, sliding_window=4, num_labels=3)
    ),
    "phi_cls": lambda: T.PhiForSequenceClassification(
        T.PhiConfig(**{**_DEC, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "num_labels": 3})
    ),
    "opt_cls": lambda: T.OPTForSequenceClassification(
        T.OPTConfig(  # type: ignore[call-arg]
            vocab_size=VOCAB,
            hidden_size=32,
            num_hidden_layers=2,
            ffn_dim=37,
            num_attention_heads=4,
            max_position_embeddings=64,
            word_embed_proj_dim=16,
            dropout=0.0,
            init_std=INIT,
            pad_token_id=PAD,
            bos_token_id=2,
            eos_token_id=2,
            num_labels=3,
        )
    ),
    "gptneox_cls": lambda: T.GPTNeoXForSequenceClassification(
        T.GPTNeoXConfig(
            **{
                **_DEC,
                "hidden_dropout": 0.0,
                "attention_dropout": 0.0,
                "bos_token_id": 2,
                "eos_token_id": 2,
                "num_labels": 3,
            }
        )
    ),
    "modernbert_cls": lambda: T.ModernBertForSequenceClassification(_modernbert_cfg(num_labels=3)),
    "mpnet_cls": lambda: T.MPNetForSequenceClassification(T.MPNetConfig(**{**_ENC, "num_labels": 3})),
    "gemma3_cls": lambda: T.Gemma3TextForSequenceClassification(_gemma3_cfg(num_labels=3)),
    "mixtral_cls": lambda: T.MixtralForSequenceClassification(_mixtral_cfg(num_labels=3)),
    "qwen2moe_cls": lambda: T.Qwen2MoeForSequenceClassification(_qwen2moe_cfg(num_labels=3)),
    # regression (num_labels = 1)
    "bert_reg": lambda: T.BertForSequenceClassification(_bert_cfg(num_labels=1)),
    # masked LMs
    "bert_mlm": lambda: T.BertForMaskedLM(_bert_cfg()),
    "roberta_mlm": lambda: T.RobertaForMaskedLM(_roberta_cfg()),
    "distilbert_mlm": lambda: T.DistilBertForMaskedLM(_distil_cfg()),
    "albert_mlm": lambda: T.AlbertForMaskedLM(_albert_cfg()),
    "electra_mlm": lambda: T.ElectraForMaskedLM(_electra_cfg()),
    "modernbert_mlm": lambda: T.ModernBertForMaskedLM(_modernbert_cfg()),
    "mpnet_mlm": lambda: T.MPNetForMaskedLM(T.MPNetConfig(**_ENC)),
    "deberta_mlm": lambda: T.DebertaV2ForMaskedLM(_deberta_cfg()),
    # causal LMs
    "gpt2_lm": lambda: T.GPT2LMHeadModel(
        T.GPT2Config(
            vocab_size=VOCAB,
            n_embd=32,
            n_layer=2,
            n_head=4,
            n_inner=37,
            n_positions=64,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            initializer_range=INIT,
            pad_token_id=PAD,
            bos_token_id=2,
            eos_token_id=2,
        )
    ),
    "llama_lm": lambda: T.LlamaForCausalLM(_llama_cfg()),
    "mistral_lm": lambda: T.MistralForCausalLM(_llama_cfg(T.MistralConfig, sliding_window=None)),
    "qwen2_lm": lambda: T.Qwen2ForCausalLM(_llama_cfg(T.Qwen2Config)),
    "gemma_lm": lambda: T.GemmaForCausalLM(_llama_cfg(T.GemmaConfig, head_dim=8)),
    # final_logit_softcapping small so the cap visibly changes the logits
    "gemma2_lm": lambda: T.Gemma2ForCausalLM(
        _llama_cfg(
            T.Gemma2Config,
            head_dim=8,
            query_pre_attn_scalar=8,
            final_logit_softcapping=2.0,
            attn_logit_softcapping=50.0,
            sliding_window=4,
        )
    ),
    "phi_lm": lambda: T.PhiForCausalLM(T.PhiConfig(**{**_DEC, "resid_pdrop": 0.0, "embd_pdrop": 0.0})),
    "opt_lm": lambda: T.OPTForCausalLM(
        T.OPTConfig(
            vocab_size=VOCAB,
            hidden_size=32,
            num_hidden_layers=2,
            ffn_dim=37,
            num_attention_heads=4,
            max_position_embeddings=64,
            word_embed_proj_dim=16,
            dropout=0.0,
            init_std=INIT,
            pad_token_id=PAD,
            bos_token_id=2,
            eos_token_id=2,
        )
    ),
    "gptneox_lm": lambda: T.GPTNeoXForCausalLM(
        T.GPTNeoXConfig(
            **{**_DEC, "hidden_dropout": 0.0, "attention_dropout": 0.0, "bos_token_id": 2, "eos_token_id": 2}
        )
    ),
    "qwen3_lm": lambda: T.Qwen3ForCausalLM(_llama_cfg(T.Qwen3Config, head_dim=8)),
    "phi3_lm": lambda: T.Phi3ForCausalLM(_llama_cfg(T.Phi3Config, resid_pdrop=0.0, embd_pdrop=0.0)),
    "olmo2_lm": lambda: T.Olmo2ForCausalLM(_llama_cfg(T.Olmo2Config)),
    "stablelm_lm": lambda: T.StableLmForCausalLM(_llama_cfg(T.StableLmConfig)),
    "starcoder2_lm": lambda: T.Starcoder2ForCausalLM(_llama_cfg(T.Starcoder2Config, residual_dropout=0.0)),
    "gptj_lm": lambda: T.GPTJForCausalLM(
        T.GPTJConfig(
            vocab_size=VOCAB,
            n_embd=32,
            n_layer=2,
            n_head=4,
            rotary_dim=4,
            n_positions=64,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            initializer_range=INIT,
            pad_token_id=PAD,
            bos_token_id=2,
            eos_token_id=2,
        )
    ),
    "gptneo_lm": lambda: T.GPTNeoForCausalLM(
        T.GPTNeoConfig(
            vocab_size=VOCAB,
            hidden_size=32,
            num_layers=2,
            num_heads=4,
            attention_types=[[["global", "local"], 1]],
            max_position_embeddings=64,
            resid_dropout=0.0,
            embed_dropout=0.0,
            attention_dropout=0.0,
            initializer_range=INIT,
            pad_token_id=PAD,
            bos_token_id=2,
            eos_token_id=2,
        )
    ),
    "bloom_lm": lambda: T.BloomForCausalLM(
        T.BloomConfig(
            vocab_size=VOCAB,
            hidden_size=32,
            n_layer=2,
            n_head=4,
            hidden_dropout=0.0,
            attention_dropout=0.0,
            initializer_range=INIT,
            pad_token_id=PAD,
            bos_token_id=2,
            eos_token_id=2,
        )
    ),
    "falcon_lm": lambda: T.FalconForCausalLM(
        T.FalconConfig(
            vocab_size=VOCAB,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            hidden_dropout=0.0,
            attention_dropout=0.0,
            initializer_range=INIT,
            pad_token_id=PAD,
            bos_token_id=2,
            eos_token_id=2,
        )
    ),
    # logits_scaling and logit_scale far from 1 so a missed scaling shows (Granite divides, Cohere multiplies)
    "granite_lm": lambda: T.GraniteForCausalLM(
        _llama_cfg(
            T.GraniteConfig,
            logits_scaling=4.0,
            embedding_multiplier=2.0,
            residual_multiplier=0.5,
            attention_multiplier=0.3,
        )
    ),
    "cohere_lm": lambda: T.CohereForCausalLM(_llama_cfg(T.CohereConfig, logit_scale=0.25)),
    "gemma3_lm": lambda: T.Gemma3ForCausalLM(_gemma3_cfg(final_logit_softcapping=3.0)),
    "mixtral_lm": lambda: T.MixtralForCausalLM(_mixtral_cfg()),
    "qwen2moe_lm": lambda: T.Qwen2MoeForCausalLM(_qwen2moe_cfg()),
}


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Spec:
    name: str
    kind: str  # "cls" | "reg" | "mlm" | "clm"
    decoder: bool  # decoder family: position_ids from the mask, final norm on layers < L
    blocks: Callable | None  # model -> list of transformer block modules (None: blocks are shared, ALBERT)
    token_types: bool  # takes token_type_ids with 2 segments


def _b(path: str) -> Callable:
    def get(model):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part)
        return list(obj)

    return get


SPECS: dict[str, Spec] = {
    s.name: s
    for s in [
        Spec("bert_cls", "cls", False, _b("bert.encoder.layer"), True),
        Spec("roberta_cls", "cls", False, _b("roberta.encoder.layer"), False),
        Spec("xlmr_cls", "cls", False, _b("roberta.encoder.layer"), False),
        Spec("distilbert_cls", "cls", False, _b("distilbert.transformer.layer"), False),
        Spec("albert_cls", "cls", False, None, True),
        Spec("electra_cls", "cls", False, _b("electra.encoder.layer"), True),
        Spec("deberta_cls", "cls", False, _b("deberta.encoder.layer"), True),
        Spec("gpt2_cls", "cls", True, _b("transformer.h"), False),
        Spec("llama_cls", "cls", True, _b("model.layers"), False),
        Spec("mistral_cls", "cls", True, _b("model.layers"), False),
        Spec("qwen2_cls", "cls", True, _b("model.layers"), False),
        Spec("gemma_cls", "cls", True, _b("model.layers"), False),
        Spec("gemma2_cls", "cls", True, _b("model.layers"), False),
        Spec("phi_cls", "cls", True, _b("model.layers"), False),
        Spec("opt_cls", "cls", True, _b("model.decoder.layers"), False),
        Spec("gptneox_cls", "cls", True, _b("gpt_neox.layers"), False),
        Spec("bert_reg", "reg", False, _b("bert.encoder.layer"), True),
        Spec("bert_mlm", "mlm", False, _b("bert.encoder.layer"), True),
        Spec("roberta_mlm", "mlm", False, _b("roberta.encoder.layer"), False),
        Spec("distilbert_mlm", "mlm", False, _b("distilbert.transformer.layer"), False),
        Spec("albert_mlm", "mlm", False, None, True),
        Spec("electra_mlm", "mlm", False, _b("electra.encoder.layer"), True),
        Spec("gpt2_lm", "clm", True, _b("transformer.h"), False),
        Spec("llama_lm", "clm", True, _b("model.layers"), False),
        Spec("mistral_lm", "clm", True, _b("model.layers"), False),
        Spec("qwen2_lm", "clm", True, _b("model.layers"), False),
        Spec("gemma_lm", "clm", True, _b("model.layers"), False),
        Spec("gemma2_lm", "clm", True, _b("model.layers"), False),
        Spec("phi_lm", "clm", True, _b("model.layers"), False),
        Spec("opt_lm", "clm", True, _b("model.decoder.layers"), False),
        Spec("gptneox_lm", "clm", True, _b("gpt_neox.layers"), False),
        Spec("qwen3_lm", "clm", True, _b("model.layers"), False),
        Spec("phi3_lm", "clm", True, _b("model.layers"), False),
        Spec("olmo2_lm", "clm", True, _b("model.layers"), False),
        Spec("stablelm_lm", "clm", True, _b("model.layers"), False),
        Spec("starcoder2_lm", "clm", True, _b("model.layers"), False),
        Spec("gptj_lm", "clm", True, _b("transformer.h"), False),
        Spec("gptneo_lm", "clm", True, _b("transformer.h"), False),
        Spec("bloom_lm", "clm", True, _b("transformer.h"), False),
        Spec("falcon_lm", "clm", True, _b("transformer.h"), False),
        # Families added with the verified automatic adapter (appended, so older rows keep their seeds).
        Spec("modernbert_cls", "cls", False, _b("model.layers"), False),
        Spec("mpnet_cls", "cls", False, _b("mpnet.encoder.layer"), False),
        Spec("gemma3_cls", "cls", True, _b("model.layers"), False),
        Spec("mixtral_cls", "cls", True, _b("model.layers"), False),
        Spec("qwen2moe_cls", "cls", True, _b("model.layers"), False),
        Spec("modernbert_mlm", "mlm", False, _b("model.layers"), False),
        Spec("mpnet_mlm", "mlm", False, _b("mpnet.encoder.layer"), False),
        Spec("deberta_mlm", "mlm", False, _b("deberta.encoder.layer"), True),
        Spec("granite_lm", "clm", True, _b("model.layers"), False),
        Spec("cohere_lm", "clm", True, _b("model.layers"), False),
        Spec("gemma3_lm", "clm", True, _b("model.layers"), False),
        Spec("mixtral_lm", "clm", True, _b("model.layers"), False),
        Spec("qwen2moe_lm", "clm", True, _b("model.layers"), False),
    ]
}
assert set(SPECS) == set(FACTORIES)
NAMES = list(SPECS)


# Built models are cached for the session: tests match layer=<block module> by identity, so every test
# module must get the SAME model objects (this module is imported once, as tests._support.families).
_BUILT: dict[str, T.PreTrainedModel] = {}


def build(name: str) -> T.PreTrainedModel:
    """Build (once per session) the seeded tiny model `name`, in eval mode."""
    if name not in _BUILT:
        _BUILT[name] = _seeded(FACTORIES[name], NAMES.index(name) + 11)
    return _BUILT[name]


def n_layers(model) -> int:
    return int(model.config.num_hidden_layers if hasattr(model.config, "num_hidden_layers") else model.config.n_layer)


# ----------------------------------------------------------------------------- batches
@dataclass
class Batch:
    ids: torch.Tensor  # (B, T) long
    mask: torch.Tensor  # (B, T) long, 1 = real token
    token_type_ids: torch.Tensor | None = None
    left: bool = False

    def spans(self):
        """(start, stop) of the real tokens of each row."""
        out = []
        for row in self.mask:
            nz = row.nonzero().flatten()
            out.append((int(nz[0]), int(nz[-1]) + 1))
        return out


def make_batch(lengths=LENGTHS, *, left=False, seed=1, mlm=False, token_types=False) -> Batch:
    """Random ids in [LOW_ID, VOCAB) with right (or left) padding by PAD.

    mlm=True puts exactly one MASK in each row (its 3rd real token). token_types=True gives segment 0 to the
    first half of the real tokens and segment 1 to the rest (pads: 0).
    """
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    tt = torch.zeros_like(ids) if token_types else None
    for b, n in enumerate(lengths):
        start = width - n if left else 0
        ids[b, start : start + n] = torch.randint(LOW_ID, VOCAB, (n,), generator=g)
        mask[b, start : start + n] = 1
        if mlm:
            ids[b, start + min(2, n - 1)] = MASK
        if tt is not None:
            tt[b, start + n // 2 : start + n] = 1
    return Batch(ids, mask, tt, left)
