r"""The one loader of a local model folder: ``(model, tokenizer, task)`` from what ``save_pretrained`` wrote.

Every command that takes a model folder (``explain``, ``attribute-dataset``,
``check-model``) loads it here, so a folder is accepted or refused by one rule,
with one wording: the message starts with the folder as given and says what to
do. The task is read from ``config.architectures`` by :data:`ARCHITECTURE_TASKS`
(the one suffix table). A folder without tokenizer files is refused when a
tokenizer is asked for: transformers would otherwise build an empty vocabulary
from the config alone and read every word as the unknown token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Tuple, Union

from captum_normxlogit._models.tasks import CAUSAL_LM, MASKED_LM, SEQUENCE_CLASSIFICATION
from captum_normxlogit._utils.quiet import quiet_transformers

__all__ = ["ARCHITECTURE_TASKS", "TOKENIZER_FILES", "ModelFolderError", "load_model_folder"]

#: ``config.architectures`` suffix -> task, and the ``transformers`` Auto class that loads it.
ARCHITECTURE_TASKS = (
    ("ForSequenceClassification", SEQUENCE_CLASSIFICATION, "AutoModelForSequenceClassification"),
    ("ForMaskedLM", MASKED_LM, "AutoModelForMaskedLM"),
    ("ForCausalLM", CAUSAL_LM, "AutoModelForCausalLM"),
)
#: Any one of these in a model folder holds a tokenizer.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)
_SAVED = "pass a local folder written by save_pretrained() (config.json, weights and tokenizer files)"


class ModelFolderError(ValueError):
    r"""A model folder that cannot be loaded; the message names the folder, what is wrong and what to do."""


def _one_line(error: BaseException) -> str:
    r"""A library error's message on one line (transformers' can span several)."""
    return " ".join(str(error).split()) or type(error).__name__


def task_of(architectures: Any) -> Optional[str]:
    r"""The task of the first architecture name that ends with a suffix of :data:`ARCHITECTURE_TASKS`, else None."""
    for arch in list(architectures or []):
        for suffix, task, _ in ARCHITECTURE_TASKS:
            if str(arch).endswith(suffix):
                return task
    return None


def load_model_folder(
    path: Union[str, Path], *, tokenizer: bool = True, any_architecture: bool = False
) -> Tuple[Any, Any, Optional[str]]:
    r"""Load a model folder written by ``save_pretrained``, in float32 and eval mode, offline.

    Args:
        path (str or Path): The folder (``~`` is expanded).
        tokenizer (bool, optional): Also load its tokenizer, refusing a folder
            without tokenizer files. Default: True
        any_architecture (bool, optional): Accept any ``transformers`` class
            that ``config.architectures`` names (``check-model`` reports on
            models NormXLogit may refuse); its task is None when the suffix
            table does not know it. Default: False (a sequence classifier or
            regression head, a masked LM or a causal LM)

    Returns:
        *(model, tokenizer or None, task)*: ``task`` one of
        :mod:`captum_normxlogit._models.tasks` (or None, see ``any_architecture``).

    Raises:
        ModelFolderError: The folder is missing, has no readable ``config.json``,
            holds another kind of model, has no tokenizer files (when asked
            for) or its files do not load. Nothing is changed.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "no such directory"
        raise ModelFolderError(f"{path}: {what}; {_SAVED}.")
    if not (folder / "config.json").is_file():
        raise ModelFolderError(f"{path}: no config.json there; {_SAVED}.")
    import torch
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
    except Exception as error:  # a corrupt or foreign config.json: JSON, key and type errors alike
        raise ModelFolderError(
            f"{path}: config.json cannot be read ({_one_line(error)}); save the model again with save_pretrained()."
        ) from None
    architectures = list(getattr(config, "architectures", None) or [])
    task = task_of(architectures)
    loader: Any = None
    if task is not None:
        loader = getattr(transformers, next(auto for _, t, auto in ARCHITECTURE_TASKS if t == task))
    elif any_architecture:
        loader = next((getattr(transformers, a) for a in architectures if hasattr(transformers, a)), None)
    if loader is None:
        wanted = (
            "a transformers task-model class"
            if any_architecture
            else (
                "a sequence classifier (*ForSequenceClassification, also a regression head), a masked LM "
                "(*ForMaskedLM) or a causal LM (*ForCausalLM)"
            )
        )
        raise ModelFolderError(f"{path}: config.architectures is {architectures or 'empty'}; pass {wanted}.")
    if tokenizer and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelFolderError(
            f"{path}: no tokenizer files there (one of {', '.join(TOKENIZER_FILES)}); without them every word "
            "would be read as an unknown token. Save it next to the model with tokenizer.save_pretrained()."
        )
    # broken tokenizer or weight files raise many kinds of error
    with quiet_transformers():
        try:
            tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True) if tokenizer else None
        except Exception as error:
            raise ModelFolderError(
                f"{path}: could not load it: the tokenizer files cannot be read ({_one_line(error)}); save them "
                "again with tokenizer.save_pretrained()."
            ) from None
        try:
            model = loader.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
        except Exception as error:
            raise ModelFolderError(
                f"{path}: could not load it: the weights cannot be loaded ({_one_line(error)}); save the model "
                "again with save_pretrained()."
            ) from None
    return model.eval(), tok, task
