"""Independent re-implementation of NormXLogit as the authors compute it: one head call per token.

Deliberately written the slow, literal way (plain Python loops over examples and tokens, one call of the
model's own head modules per token vector) and using nothing from `captum_normxlogit`. Only the Hugging
Face model, its `output_hidden_states=True` output and its head modules are used.

    score[b, i] = ||hidden_states[0][b, i]||_2 * HoT(hidden_states[l][b, i])[target[b]]
    regression:   ||hidden_states[0][b, i]||_2 * |HoT(hidden_states[l][b, i]) - model_output[b]|

transformers 5.x: for decoders (and ModernBERT) `hidden_states[L]` is already after the final norm (it is
`last_hidden_state`) while `hidden_states[0..L-1]` are not, so the final norm is applied to layers < L only.
Granite divides its logits by `config.logits_scaling`, Cohere multiplies them by `logit_scale`.
Decoders get position_ids = (mask.cumsum(-1) - 1).clamp(min=0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import transformers as T

_DECODER_CLASSES = (
    T.GPT2ForSequenceClassification,
    T.LlamaForSequenceClassification,
    T.GPT2LMHeadModel,
    T.LlamaForCausalLM,
    T.MistralForCausalLM,
    T.Qwen2ForCausalLM,
    T.GemmaForCausalLM,
    T.Gemma2ForCausalLM,
    T.PhiForCausalLM,
    T.OPTForCausalLM,
    T.GPTNeoXForCausalLM,
    T.Qwen3ForCausalLM,
    T.Phi3ForCausalLM,
    T.Olmo2ForCausalLM,
    T.StableLmForCausalLM,
    T.Starcoder2ForCausalLM,
    T.GPTJForCausalLM,
    T.GPTNeoForCausalLM,
    T.BloomForCausalLM,
    T.FalconForCausalLM,
    T.MistralForSequenceClassification,
    T.Qwen2ForSequenceClassification,
    T.GemmaForSequenceClassification,
    T.Gemma2ForSequenceClassification,
    T.PhiForSequenceClassification,
    T.OPTForSequenceClassification,
    T.GPTNeoXForSequenceClassification,
    T.GraniteForCausalLM,
    T.CohereForCausalLM,
    T.Gemma3ForCausalLM,
    T.MixtralForCausalLM,
    T.Qwen2MoeForCausalLM,
    T.Gemma3TextForSequenceClassification,
    T.MixtralForSequenceClassification,
    T.Qwen2MoeForSequenceClassification,
)
_MLM_CLASSES = (
    T.BertForMaskedLM,
    T.RobertaForMaskedLM,
    T.DistilBertForMaskedLM,
    T.AlbertForMaskedLM,
    T.ElectraForMaskedLM,
    T.ModernBertForMaskedLM,
    T.MPNetForMaskedLM,
    T.DebertaV2ForMaskedLM,
)
# ModernBERT is an encoder whose backbone ends with `final_norm`; like the decoders, its hidden_states[L]
# is already after that norm, and hidden_states[0..L-1] are not.
_MODERNBERT = (T.ModernBertForSequenceClassification, T.ModernBertForMaskedLM)
_CLM_CLASSES = (
    T.GPT2LMHeadModel,
    T.LlamaForCausalLM,
    T.MistralForCausalLM,
    T.Qwen2ForCausalLM,
    T.GemmaForCausalLM,
    T.Gemma2ForCausalLM,
    T.PhiForCausalLM,
    T.OPTForCausalLM,
    T.GPTNeoXForCausalLM,
    T.Qwen3ForCausalLM,
    T.Phi3ForCausalLM,
    T.Olmo2ForCausalLM,
    T.StableLmForCausalLM,
    T.Starcoder2ForCausalLM,
    T.GPTJForCausalLM,
    T.GPTNeoForCausalLM,
    T.BloomForCausalLM,
    T.FalconForCausalLM,
    T.GraniteForCausalLM,
    T.CohereForCausalLM,
    T.Gemma3ForCausalLM,
    T.MixtralForCausalLM,
    T.Qwen2MoeForCausalLM,
)


def is_decoder(model) -> bool:
    return isinstance(model, _DECODER_CLASSES)


def decoder_position_ids(mask: torch.Tensor) -> torch.Tensor:
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


@torch.no_grad()
def run(model, ids=None, mask=None, token_type_ids=None, inputs_embeds=None):
    """One HF forward with hidden states, called the way the implementation is specified to call it."""
    x = ids if ids is not None else inputs_embeds
    if mask is None:
        mask = torch.ones(x.shape[:2], dtype=torch.long)
    kwargs = dict(attention_mask=mask, output_hidden_states=True)
    if token_type_ids is not None:
        kwargs["token_type_ids"] = token_type_ids
    if is_decoder(model):
        kwargs["position_ids"] = decoder_position_ids(mask)
        kwargs["use_cache"] = False
    if ids is not None:
        return model(input_ids=ids, **kwargs)
    return model(inputs_embeds=inputs_embeds, **kwargs)


def _final_norm(model, x):
    """The decoder's final norm (and OPT's project_out): the step between the last block and the head."""
    if isinstance(
        model,
        (
            T.GPT2LMHeadModel,
            T.GPT2ForSequenceClassification,
            T.GPTJForCausalLM,
            T.GPTNeoForCausalLM,
            T.BloomForCausalLM,
            T.FalconForCausalLM,
        ),
    ):
        return model.transformer.ln_f(x)
    if isinstance(model, (T.PhiForCausalLM, T.PhiForSequenceClassification)):
        return model.model.final_layernorm(x)
    if isinstance(model, (T.OPTForCausalLM, T.OPTForSequenceClassification)):
        dec = model.model.decoder
        if dec.final_layer_norm is not None:
            x = dec.final_layer_norm(x)
        if dec.project_out is not None:
            x = dec.project_out(x)
        return x
    if isinstance(model, (T.GPTNeoXForCausalLM, T.GPTNeoXForSequenceClassification)):
        return model.gpt_neox.final_layer_norm(x)
    return model.model.norm(x)  # Llama, Mistral, Qwen2/3, Gemma(-2/-3), Phi-3, OLMo-2, StableLM, StarCoder2,
    #                              Granite, Cohere, Mixtral, Qwen2-MoE


def head_on_token(model, x, *, last_layer: bool, softcap: bool = True, scaling: bool = True) -> torch.Tensor:
    """The model's own head on ONE token vector x of shape (1, 1, H); returns a 1-D tensor of logits.

    Mirrors the authors' per-token call `model.classifier(model.dropout(model.bert.pooler(H[l][b][i:i+1]
    .unsqueeze(0))))`: a length-1 "sequence" whose first (only) token is token i.
    """
    assert x.dim() == 3 and x.shape[:2] == (1, 1)
    m = model
    # --- encoders: sequence classification heads
    if isinstance(m, T.BertForSequenceClassification):
        assert m.bert.pooler is not None  # the classifier reads the pooled [CLS]
        return m.classifier(m.dropout(m.bert.pooler(x)))[0]
    if isinstance(m, T.AlbertForSequenceClassification):
        return m.classifier(m.dropout(m.albert.pooler_activation(m.albert.pooler(x[:, 0]))))[0]
    if isinstance(
        m,
        (T.RobertaForSequenceClassification, T.XLMRobertaForSequenceClassification, T.ElectraForSequenceClassification),
    ):
        return m.classifier(x)[0]
    if isinstance(m, T.DistilBertForSequenceClassification):
        return m.classifier(m.dropout(torch.nn.ReLU()(m.pre_classifier(x[:, 0]))))[0]
    if isinstance(m, T.DebertaV2ForSequenceClassification):
        return m.classifier(m.dropout(m.pooler(x)))[0]
    if isinstance(m, T.MPNetForSequenceClassification):
        return m.classifier(x)[0]
    if isinstance(m, _MODERNBERT):
        if not last_layer:
            x = m.model.final_norm(x)
        if isinstance(m, T.ModernBertForSequenceClassification):
            return m.classifier(m.drop(m.head(x[:, 0])))[0]
        return m.decoder(m.head(x))[0, 0]
    # --- encoders: masked-LM heads over the full vocabulary
    if isinstance(m, T.BertForMaskedLM):
        return m.cls(x)[0, 0]
    if isinstance(m, T.RobertaForMaskedLM):
        return m.lm_head(x)[0, 0]
    if isinstance(m, T.DistilBertForMaskedLM):
        return m.vocab_projector(m.vocab_layer_norm(m.activation(m.vocab_transform(x))))[0, 0]
    if isinstance(m, T.AlbertForMaskedLM):
        return m.predictions(x)[0, 0]
    if isinstance(m, T.ElectraForMaskedLM):
        return m.generator_lm_head(m.generator_predictions(x))[0, 0]
    if isinstance(m, T.MPNetForMaskedLM):
        return m.lm_head(x)[0, 0]
    if isinstance(m, T.DebertaV2ForMaskedLM):
        return m.cls(x)[0, 0]  # the legacy head (config.legacy=True, the default)
    # --- decoders: final norm (for layers < L only), then score / lm_head
    if isinstance(m, _DECODER_CLASSES):
        if not last_layer:
            x = _final_norm(m, x)
        if type(m).__name__.endswith("ForSequenceClassification"):  # every decoder classifier: `score`
            return m.get_submodule("score")(x)[0, 0]
        logits = m.lm_head(x)[0, 0]  # full vocabulary (GPT-NeoX's old `embed_out` is `lm_head` in 5.x)
        if scaling and isinstance(m, T.GraniteForCausalLM):
            logits = logits / m.config.logits_scaling
        if scaling and isinstance(m, T.CohereForCausalLM):
            logits = logits * m.logit_scale
        cap = getattr(m.config, "final_logit_softcapping", None)
        if softcap and cap is not None:
            logits = cap * torch.tanh(logits / cap)
        return logits
    raise TypeError(f"no reference head for {type(m).__name__}")


def kind_of(model) -> str:
    if isinstance(model, _MLM_CLASSES):
        return "mlm"
    if isinstance(model, _CLM_CLASSES):
        return "clm"
    return "reg" if model.config.num_labels == 1 else "cls"


def last_real(mask_row: torch.Tensor) -> int:
    return int(mask_row.nonzero().flatten()[-1])


def predicted_targets(model, out, ids, mask, mask_token_id=None) -> list[int]:
    """The model's own prediction per example (the authors' p-hat)."""
    kind = kind_of(model)
    B = out.logits.shape[0]
    targets = []
    for b in range(B):
        if kind == "cls":
            targets.append(int(out.logits[b].argmax()))
        elif kind == "reg":
            targets.append(0)
        elif kind == "clm":
            targets.append(int(out.logits[b, last_real(mask[b])].argmax()))
        else:  # mlm
            where = (ids[b] == mask_token_id).nonzero().flatten()
            assert len(where) == 1, "reference expects exactly one mask token per row"
            targets.append(int(out.logits[b, int(where[0])].argmax()))
    return targets


@dataclass
class RefResult:
    scores: list  # scores[l] (B, T) for l = 0..L
    logat: list  # LogAt alone, per layer
    norm0: torch.Tensor  # (B, T) ||hidden_states[0]||, pads 0
    targets: list[int]
    logits: torch.Tensor


@torch.no_grad()
def reference(
    model,
    ids=None,
    mask=None,
    token_type_ids=None,
    *,
    inputs_embeds=None,
    target=None,
    mask_token_id=None,
    layers=None,
    softcap: bool = True,
    scaling: bool = True,
) -> RefResult:
    """Per-token loop. `target`: None (model's prediction), int, or a per-example list.

    layers: the hidden-state indices to score (default: all 0..L).
    """
    x = ids if ids is not None else inputs_embeds
    B, Tn = x.shape[:2]
    if mask is None:
        mask = torch.ones(B, Tn, dtype=torch.long)
    out = run(model, ids, mask, token_type_ids, inputs_embeds)
    H = out.hidden_states
    L = len(H) - 1
    kind = kind_of(model)
    if target is None:
        targets = predicted_targets(model, out, ids, mask, mask_token_id)
    elif isinstance(target, int):
        targets = [target] * B
    else:
        targets = [int(t) for t in target]
    layers = range(L + 1) if layers is None else layers

    norm0 = torch.zeros(B, Tn)
    for b in range(B):
        for i in range(Tn):
            if mask[b, i]:
                norm0[b, i] = H[0][b][i].float().norm(p=2)

    scores, logat = [None] * (L + 1), [None] * (L + 1)
    for layer in layers:
        s = torch.zeros(B, Tn)
        g = torch.zeros(B, Tn)
        for b in range(B):
            for i in range(Tn):
                if not mask[b, i]:
                    continue
                tok = head_on_token(
                    model,
                    H[layer][b][i : i + 1].unsqueeze(0),
                    last_layer=(layer == L),
                    softcap=softcap,
                    scaling=scaling,
                )
                if kind == "reg":
                    value = (tok[0] - out.logits[b, 0]).abs()
                else:
                    value = tok[targets[b]]
                g[b, i] = value
                s[b, i] = value * norm0[b, i]
        scores[layer], logat[layer] = s, g
    return RefResult(scores, logat, norm0, targets, out.logits)
