r"""``.manifest.json``: what produced an output folder, and the rules for resuming into it.

The manifest records the model (class, a hash of its config, a fingerprint of
its weights, its path), the tokenizer, the package version, every setting that
changes a row, the data's description, and the shard list with row counts.
The *fingerprint* is a hash of the row-changing part (settings + model +
tokenizer); a rerun resumes only when it is the same. Settings that cannot
change a finished row (``on_error``, ``max_tokens_per_batch``, ``progress``,
the number of processes, ``limit``) are recorded but not fingerprinted.

Why the leading dot: ``pandas.read_parquet(dir)`` (pyarrow) reads every file of
a folder except names starting with ``.`` or ``_``, and
``datasets.load_dataset("parquet", data_dir=dir)`` every file except names
starting with ``.`` (and a few fixed names); a plain ``manifest.json`` makes
both fail with "Parquet magic bytes not found", ``_manifest.json`` still breaks
``datasets``. ``.manifest.json`` is skipped by both.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from torch import nn

from captum_normxlogit._models.tasks import CAUSAL_LM, MASKED_LM, SEQUENCE_CLASSIFICATION
from captum_normxlogit._utils.atomic import atomic_write_text

__all__ = [
    "FORMAT",
    "MANIFEST_NAME",
    "ManifestError",
    "ResumeError",
    "fingerprint",
    "model_identity",
    "read_manifest",
    "tokenizer_identity",
    "write_manifest",
]

MANIFEST_NAME = ".manifest.json"
FORMAT = "captum_normxlogit.dataset/1"
_SAMPLES_PER_TENSOR = 257  # weights fingerprint: evenly spaced values of every parameter (exact bytes)


class ResumeError(RuntimeError):
    r"""The output folder holds a different run (other settings, model or data), or is not ours."""


class ManifestError(ResumeError):
    r"""The folder's ``.manifest.json`` is damaged or not one this version wrote (its shards may be intact)."""


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _weights_hash(model: nn.Module) -> str:
    r"""Hash of the exact bytes of a fixed sample of every parameter (fast; thread-count independent)."""
    digest = hashlib.sha256()
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        if tensor.device.type == "meta" or tensor.numel() == 0:
            continue
        flat = tensor.detach().reshape(-1)
        step = max(1, flat.numel() // _SAMPLES_PER_TENSOR)
        sample = flat[::step][:_SAMPLES_PER_TENSOR].to("cpu", torch.float64)
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


def manifest_task_name(task: str, is_regression: bool) -> str:
    r"""The name ``settings.task`` gives a run's task: ``"classifier"``, ``"regression"``,
    ``"masked_lm"`` or ``"causal_lm"`` (the model task of :mod:`captum_normxlogit._models.tasks`,
    with a one-label classifier told apart). Kept as format 1 writes them: the fingerprint
    hashes the settings, so renaming one would stop every earlier run from resuming."""
    if is_regression:
        return "regression"
    return {SEQUENCE_CLASSIFICATION: "classifier", MASKED_LM: MASKED_LM, CAUSAL_LM: CAUSAL_LM}[task]


def model_identity(model: nn.Module, task: str, n_layers: int, multiply_by_inputs: bool) -> Dict[str, Any]:
    r"""Class, config hash, weights fingerprint and path of the explained model."""
    config = getattr(model, "config", None)
    config_dict = config.to_dict() if config is not None else {}
    volatile = {"transformers_version", "torch_dtype", "dtype", "_name_or_path", "_commit_hash", "name_or_path"}
    stable = {k: v for k, v in config_dict.items() if k not in volatile and not k.startswith("_")}
    return {
        "class": type(model).__name__,
        "config_hash": _sha(stable),
        "weights_hash": _weights_hash(model),
        "path": str(getattr(config, "_name_or_path", "") or getattr(model, "name_or_path", "") or ""),
        "task": task,
        "n_layers": n_layers,
        "multiply_by_inputs": bool(multiply_by_inputs),
    }


def tokenizer_identity(tokenizer: Any) -> Dict[str, Any]:
    r"""Class, path, vocabulary hash and special tokens of the tokenizer."""
    vocab = tokenizer.get_vocab() if callable(getattr(tokenizer, "get_vocab", None)) else {}
    return {
        "class": type(tokenizer).__name__,
        "path": str(getattr(tokenizer, "name_or_path", "") or ""),
        "vocab_size": len(vocab),
        "vocab_hash": _sha(sorted(vocab.items())),
        "special_tokens": list(getattr(tokenizer, "all_special_tokens", []) or []),
    }


def fingerprint(settings: Dict[str, Any], model: Dict[str, Any], tokenizer: Dict[str, Any]) -> str:
    r"""Hash of everything that changes a row (paths excluded: a copied model is the same model)."""
    model = {k: v for k, v in model.items() if k != "path"}
    tokenizer = {k: v for k, v in tokenizer.items() if k != "path"}
    return _sha({"format": FORMAT, "settings": settings, "model": model, "tokenizer": tokenizer})


def read_manifest(output_dir: Path) -> Optional[Dict[str, Any]]:
    r"""The manifest of ``output_dir``, or None when there is none.

    Raises:
        ResumeError: The file exists but is not a manifest this package wrote.
    """
    path = Path(output_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        reason = "not UTF-8" if isinstance(error, UnicodeDecodeError) else " ".join(str(error).split())
        raise ManifestError(_damaged(path, f"is damaged ({reason})")) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ManifestError(
            _damaged(
                path, f"was not written by this version of attribute_dataset (format {found!r}, expected {FORMAT!r})"
            )
        )
    return manifest


def _damaged(path: Path, what: str) -> str:
    # The shards are self-describing Parquet files: a bad manifest loses no row, so say how to read them.
    return (
        f"{path} {what}; the rows in the shards beside it are intact: read them with "
        f"pandas.read_parquet({str(path.parent)!r}), or write a new run into another folder"
    )


def write_manifest(output_dir: Path, manifest: Dict[str, Any]) -> None:
    r"""Write the manifest atomically (stamped with the time)."""
    manifest = {**manifest, "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write_text(Path(output_dir) / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def describe_difference(old: Dict[str, Any], new: Dict[str, Any]) -> str:
    r"""Which settings / model / tokenizer entries differ between two manifests, for the error message."""
    diffs = []
    for part in ("settings", "model", "tokenizer"):
        a, b = old.get(part, {}) or {}, new.get(part, {}) or {}
        for key in sorted(set(a) | set(b)):
            if key == "path":
                continue
            if a.get(key) != b.get(key):
                diffs.append(f"{part}.{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return "; ".join(diffs) or "the fingerprint"
