"""Small GPT-2-style byte-level BPE tokenizers trained in memory (no hub), shared by the CLI and dataset tests."""
from typing import Optional, Sequence

import transformers as T

CAPITALS = ["The capital of France is Paris . The capital of Italy is Rome ."] * 20


def bytelevel_bpe(texts: Sequence[str] = CAPITALS, vocab_size: int = 300,
                  model_max_length: Optional[int] = None) -> T.PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(list(texts), trainer)
    limit = {} if model_max_length is None else {"model_max_length": model_max_length}
    return T.PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                     **limit)
