"""Small random models for behaviour tests (the reference-equality suite has its own)."""

import torch
import transformers as T

VOCAB = 99
PAD, MASK = 0, 3


def bert_classifier(num_labels: int = 3, dropout: float = 0.0, seed: int = 0):
    torch.manual_seed(seed)
    config = T.BertConfig(  # type: ignore[call-arg]  # num_labels: a PretrainedConfig keyword the stub omits
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        num_labels=num_labels,
        pad_token_id=PAD,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return T.BertForSequenceClassification(config).eval()


def llama_lm(seed: int = 0):
    torch.manual_seed(seed)
    config = T.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        pad_token_id=PAD,
    )
    return T.LlamaForCausalLM(config).eval()


def batch(lengths=(7, 4, 6), seed: int = 1, left: bool = False):
    """Random ids >= 5 with right (or left) padding; returns (ids, mask)."""
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, n in enumerate(lengths):
        span = slice(width - n, width) if left else slice(0, n)
        ids[b, span] = torch.randint(5, VOCAB, (n,), generator=g)
        mask[b, span] = 1
    return ids, mask
