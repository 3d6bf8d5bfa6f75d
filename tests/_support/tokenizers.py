"""Small tokenizers built in memory (no hub): GPT-2-style byte-level BPE (CLI and dataset tests) and a
word-level one over the tiny models' ids (``"w17"`` is id 17)."""

from typing import Optional, Sequence

import transformers as T

from tests._support.tiny import VOCAB

CAPITALS = ["The capital of France is Paris . The capital of Italy is Rome ."] * 20


def bytelevel_bpe(
    texts: Sequence[str] = CAPITALS, vocab_size: int = 300, model_max_length: Optional[int] = None
) -> T.PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(texts), trainer)
    limit = {} if model_max_length is None else {"model_max_length": model_max_length}
    return T.PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>", **limit
    )


def wordlevel(size: int = VOCAB) -> T.PreTrainedTokenizerFast:
    """``"w0" .. "w{size-1}"`` -> ids 0 .. size-1 (unknown words: ``"w1"``), split on white space.

    No token is declared special: added tokens are matched inside words ("w1" would split "w12").
    """
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    words = Tokenizer(WordLevel({f"w{i}": i for i in range(size)}, unk_token="w1"))
    words.pre_tokenizer = WhitespaceSplit()
    return T.PreTrainedTokenizerFast(tokenizer_object=words)
