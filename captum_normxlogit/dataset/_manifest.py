r"""``.manifest.json``: what produced an output folder, and the rules for resuming into it.

The manifest records the model (class, a hash of its config, a digest of every
weight, its path), the tokenizer (its whole configuration), the package
version, every setting that changes a row, the data's identity, and the shard
list with row counts and checksums. The *fingerprint* is a hash of the
row-changing part (settings + model + tokenizer + data identity); a rerun
resumes only when it is the same. Settings that cannot change a finished row
(``on_error``, ``max_tokens_per_batch``, ``progress``, the number of processes,
``limit``) are recorded but not fingerprinted.

Format 2 (this version) added the full weight digest, the tokenizer's whole
configuration, the data's identity and the shard checksums. A folder of format
1 is still read (``open_attribution``, ``summarize``: its shards are not
verified), but a run does not resume into it: rerun with ``resume=False``
(CLI ``--no-resume``), which clears its shards.

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
    "LEGACY_FORMATS",
    "MANIFEST_NAME",
    "ManifestError",
    "ResumeError",
    "data_identity",
    "file_digest",
    "fingerprint",
    "model_identity",
    "read_manifest",
    "records_digest",
    "tokenizer_identity",
    "weights_digest",
    "write_manifest",
]

MANIFEST_NAME = ".manifest.json"
FORMAT = "captum_normxlogit.dataset/2"
#: Formats an earlier version wrote: read, never resumed into.
LEGACY_FORMATS = ("captum_normxlogit.dataset/1",)


class ResumeError(RuntimeError):
    r"""The output folder holds a different run (other settings, model or data), or is not ours."""


class ManifestError(ResumeError):
    r"""The folder's ``.manifest.json`` is damaged or not one this version wrote (its shards may be intact)."""


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def weights_digest(model: nn.Module) -> str:
    r"""BLAKE2b of every tensor of the state dict: name, shape, dtype and every byte, in name order.

    Parameters and persistent buffers are covered; tied weights count once per
    name, which changes nothing. Costs one read of the weights (see
    docs/dataset.md for the measured cost); a tensor on an accelerator is
    copied to the CPU one at a time.
    """
    digest = hashlib.blake2b(digest_size=32)
    state = model.state_dict()
    for name in sorted(state):
        tensor = state[name]
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}\n".encode())
        if tensor.device.type == "meta" or tensor.numel() == 0:
            continue
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    return "blake2b-256:" + digest.hexdigest()


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
        "weights_digest": weights_digest(model),
        "path": str(getattr(config, "_name_or_path", "") or getattr(model, "name_or_path", "") or ""),
        "task": task,
        "n_layers": n_layers,
        "multiply_by_inputs": bool(multiply_by_inputs),
    }


# init_kwargs that name where the files were, not what they say
_TOKENIZER_PATHS = {"name_or_path", "vocab_file", "merges_file", "tokenizer_file", "special_tokens_map_file"}
# call-time state of a fast tokenizer's backend (set by each call's truncation=/padding=, not saved)
_BACKEND_STATE = {"truncation", "padding"}


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _backend_config(tokenizer: Any) -> Optional[Dict[str, Any]]:
    r"""A fast tokenizer's whole ``tokenizer.json`` (normaliser, pre-tokeniser, model, post-processor, decoder)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not callable(getattr(backend, "to_str", None)):
        return None
    config = json.loads(backend.to_str())
    return {k: v for k, v in config.items() if k not in _BACKEND_STATE}


def tokenizer_identity(tokenizer: Any) -> Dict[str, Any]:
    r"""Class, path, special tokens and hashes of the tokenizer's whole configuration.

    ``vocab_hash`` covers the vocabulary; ``config_hash`` covers the rest of
    what the tokenizer would save: its ``init_kwargs`` (e.g. ``do_lower_case``,
    ``strip_accents``), padding and truncation sides, ``model_max_length`` and,
    for a fast tokenizer, the backend's whole ``tokenizer.json`` (normaliser,
    pre-tokeniser, post-processor; without the call-time truncation/padding
    state). File paths are left out.
    """
    vocab = tokenizer.get_vocab() if callable(getattr(tokenizer, "get_vocab", None)) else {}
    init = {k: v for k, v in dict(getattr(tokenizer, "init_kwargs", {}) or {}).items() if k not in _TOKENIZER_PATHS}
    config = {
        "init_kwargs": _json_safe(init),
        "padding_side": getattr(tokenizer, "padding_side", None),
        "truncation_side": getattr(tokenizer, "truncation_side", None),
        "model_max_length": getattr(tokenizer, "model_max_length", None),
        "do_lower_case": getattr(tokenizer, "do_lower_case", None),
        "backend": _backend_config(tokenizer),
    }
    return {
        "class": type(tokenizer).__name__,
        "path": str(getattr(tokenizer, "name_or_path", "") or ""),
        "vocab_size": len(vocab),
        "vocab_hash": _sha(sorted(vocab.items())),
        "config_hash": _sha(config),
        "padding_side": config["padding_side"],
        "truncation_side": config["truncation_side"],
        "special_tokens": list(getattr(tokenizer, "all_special_tokens", []) or []),
    }


def data_identity(description: Dict[str, Any]) -> Dict[str, Any]:
    r"""The part of a source's description that says which data it is (what the fingerprint hashes).

    A file: its content digest and size (not its path or modification time: a
    copied file is the same data, a file edited in place is not). A
    ``datasets.Dataset``: its length and ``datasets``' own fingerprint. A list:
    a digest of its records. An ``IterableDataset`` has no identity to take;
    each shard's stored input hash still refuses other data in a finished shard.
    """
    return {k: v for k, v in description.items() if k not in ("path",)}


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    r"""BLAKE2b of a file's bytes, read in 1 MiB chunks (memory does not grow with the file)."""
    digest = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return "blake2b-256:" + digest.hexdigest()


def records_digest(records: Any) -> str:
    r"""BLAKE2b of in-memory records (a list of strings or of dicts), as JSON."""
    digest = hashlib.blake2b(digest_size=32)
    for record in records:
        digest.update(json.dumps(record, sort_keys=True, default=str).encode())
        digest.update(b"\n")
    return "blake2b-256:" + digest.hexdigest()


def fingerprint(
    settings: Dict[str, Any],
    model: Dict[str, Any],
    tokenizer: Dict[str, Any],
    data: Optional[Dict[str, Any]] = None,
) -> str:
    r"""Hash of everything that changes a row (paths excluded: a copied model or file is the same one)."""
    model = {k: v for k, v in model.items() if k != "path"}
    tokenizer = {k: v for k, v in tokenizer.items() if k != "path"}
    parts = {"format": FORMAT, "settings": settings, "model": model, "tokenizer": tokenizer}
    parts["data"] = data_identity(data or {})
    return _sha(parts)


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
    if not isinstance(manifest, dict) or manifest.get("format") not in (FORMAT, *LEGACY_FORMATS):
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


def _short(value: Any) -> Any:
    return value[:28] + "..." if isinstance(value, str) and len(value) > 40 else value


def describe_difference(old: Dict[str, Any], new: Dict[str, Any]) -> str:
    r"""Which settings / model / tokenizer entries differ between two manifests, for the error message."""
    diffs = []
    for part in ("settings", "model", "tokenizer", "data"):
        a, b = old.get(part, {}) or {}, new.get(part, {}) or {}
        for key in sorted(set(a) | set(b)):
            if key == "path":
                continue
            if a.get(key) != b.get(key):
                diffs.append(f"{part}.{key}: {_short(a.get(key))!r} -> {_short(b.get(key))!r}")
    return "; ".join(diffs) or "the fingerprint"
