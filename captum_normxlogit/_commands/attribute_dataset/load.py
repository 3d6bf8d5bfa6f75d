r"""``--model DIR`` of ``normxlogit attribute-dataset``: load a local model folder of any task
``attribute_dataset`` serves (regression heads included)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Tuple

import torch

__all__ = ["load_model_dir"]

_SUFFIXES = ("ForSequenceClassification", "ForMaskedLM", "ForCausalLM")


def load_model_dir(path: str) -> Tuple[Any, Any]:
    r"""``(model in eval mode, tokenizer)`` from a folder written by ``save_pretrained``.

    Raises:
        ValueError: The folder is missing, has no ``config.json``, or holds another kind of model.
    """
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        what = "no such directory" if not folder.exists() else "no config.json there"
        raise ValueError(
            f"--model {path}: {what}; pass a local folder written by save_pretrained() "
            "(config.json, weights and tokenizer files)."
        )
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )
    from transformers.utils import logging as hf_logging

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    architectures = list(getattr(config, "architectures", None) or [])
    suffix = next((s for arch in architectures for s in _SUFFIXES if arch.endswith(s)), None)
    if suffix is None:
        raise ValueError(
            f"--model {path}: config.architectures is {architectures or 'empty'}; attribute-dataset "
            "takes a sequence classifier or regression head, a masked LM or a causal LM."
        )
    loader = {
        "ForSequenceClassification": AutoModelForSequenceClassification,
        "ForMaskedLM": AutoModelForMaskedLM,
        "ForCausalLM": AutoModelForCausalLM,
    }[suffix]
    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # our own bar follows
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = loader.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    except Exception as error:  # noqa: BLE001 - broken weights or tokenizer files raise many kinds of error
        raise ValueError(f"--model {path}: could not load it ({' '.join(str(error).split())}).") from None
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
    return model.eval(), tokenizer
