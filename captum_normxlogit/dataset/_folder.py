r"""What an output folder holds, and what a run may do with it: resume, clear, keep, check.

The rule: nothing is deleted or replaced that the package cannot prove it
wrote. Proof is the shard's own metadata (our key, with a checksum that matches
the file's contents: :func:`captum_normxlogit.dataset._writer.inspect_shard`),
or, for a folder with our manifest, the shard's name in that manifest's list
(or its fingerprint in its metadata). A file under a shard name that proves
nothing stops the run with a sentence before anything is changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from captum_normxlogit._utils.atomic import is_own_temporary
from captum_normxlogit.dataset._lock import LOCK_NAME
from captum_normxlogit.dataset._manifest import (
    FORMAT,
    LEGACY_FORMATS,
    MANIFEST_NAME,
    ResumeError,
    describe_difference,
    read_manifest,
)
from captum_normxlogit.dataset._writer import SHARD_PATTERN, ShardInfo, inspect_shard

__all__ = ["FolderState", "check_folder", "clear_folder", "kept_shards", "look", "shard_entry", "verify_folder"]


def _bookkeeping(name: str) -> bool:
    return name in (MANIFEST_NAME, LOCK_NAME) or is_own_temporary(name)


@dataclass
class FolderState:
    r"""An output folder as a run finds it.

    Attributes:
        manifest (dict or None): Its manifest.
        shards (list of str): Names of the ``part-NNNNNN.parquet`` files in it.
        foreign (list of str): Other names (not ours).
    """

    manifest: Optional[Dict[str, Any]]
    shards: List[str] = field(default_factory=list)
    foreign: List[str] = field(default_factory=list)


def look(out: Path) -> FolderState:
    r"""List ``out`` (which must be a folder) without reading any shard."""
    state = FolderState(read_manifest(out))
    for path in sorted(out.iterdir()):
        if _bookkeeping(path.name):
            continue
        (state.shards if SHARD_PATTERN.match(path.name) else state.foreign).append(path.name)
    return state


def _proved(out: Path, name: str, manifest: Optional[Dict[str, Any]]) -> Optional[ShardInfo]:
    r"""The shard's info when it proves it is ours (legacy shards: by the manifest's fingerprint)."""
    legacy = manifest is not None and manifest.get("format") in LEGACY_FORMATS
    info, _ = inspect_shard(out / name, require_digest=not legacy)
    if info is None:
        return None
    if legacy and info.meta.get("fingerprint") != manifest.get("fingerprint"):  # type: ignore[union-attr]
        return None
    return info


def check_folder(out: Path, new: Dict[str, Any], resume: bool) -> FolderState:
    r"""Refuse a folder that holds something else, or another run when resuming (changes nothing).

    Args:
        out (pathlib.Path): The output folder (existing).
        new (dict): This run's manifest (its ``fingerprint`` decides).
        resume (bool): Whether the run resumes.

    Returns:
        FolderState

    Raises:
        ResumeError: What is wrong and what to do, in one sentence.
    """
    state = look(out)
    manifest, fp = state.manifest, new["fingerprint"]
    if manifest is None and state.foreign:
        raise ResumeError(
            f"output_dir {out} is not empty ({', '.join(state.foreign[:3])}...) and holds no "
            f"{MANIFEST_NAME}: it was not written by attribute_dataset. Choose a new or empty folder."
        )
    if manifest is not None and manifest.get("format") in LEGACY_FORMATS and resume:
        raise ResumeError(
            f"output_dir {out} was written by an earlier version of attribute_dataset (format "
            f"{manifest.get('format')!r}, without shard checksums), which this version does not resume "
            "into; rerun with resume=False (CLI: --no-resume) to start over, or choose another folder."
        )
    if manifest is not None and resume and manifest.get("fingerprint") != fp:
        raise ResumeError(
            f"output_dir {out} holds a run with other settings, model, tokenizer or data "
            f"({describe_difference(manifest, new)}); pass "
            "resume=False (CLI: --no-resume) to start over, or choose another folder."
        )
    if manifest is not None and resume:
        return state  # shards under our names in our folder: checked one by one as the run meets them
    listed = {s.get("file") for s in (manifest or {}).get("shards", [])}
    unproved, others = [], []
    for name in state.shards:
        info = None if name in listed else _proved(out, name, manifest)
        if name in listed or (info is not None and manifest is not None):
            continue
        if info is None:
            unproved.append(name)
        elif info.meta.get("fingerprint") != fp:
            others.append(name)
    if unproved:
        raise ResumeError(
            f"output_dir {out} holds {', '.join(unproved[:3])}, which attribute_dataset cannot prove it "
            f"wrote (no {MANIFEST_NAME} lists it and it carries no matching checksum); move it away or "
            "choose another folder."
        )
    if manifest is None and resume and others:
        raise ResumeError(
            f"output_dir {out} holds shards of another run and no {MANIFEST_NAME} ({', '.join(others[:3])}); "
            "pass resume=False (CLI: --no-resume) to clear them, or choose another folder."
        )
    return state


def clear_folder(out: Path, state: FolderState) -> None:
    r"""``resume=False``: remove our shards (proved by :func:`check_folder`) and the manifest, nothing else."""
    for name in state.shards:
        (out / name).unlink()
    if state.manifest is not None:
        (out / MANIFEST_NAME).unlink()


def shard_entry(name: str, info: ShardInfo) -> Dict[str, Any]:
    r"""The manifest's entry for a sound shard."""
    first = info.indices[0] if info.indices else int(info.meta.get("first_index", 0))
    return {
        "file": name,
        "first_index": first,
        "rows": info.rows,
        "skipped": info.skipped,
        "tokens": info.tokens,
        "digest": info.digest,
    }


def kept_shards(out: Path, done: set, fp: str) -> List[Dict[str, Any]]:
    r"""Shards of this run (same fingerprint, sound) outside this call's range, e.g. beyond a smaller ``limit``."""
    kept = []
    for name in look(out).shards:
        if name in done:
            continue
        info, _ = inspect_shard(out / name)
        if info is not None and info.meta.get("fingerprint") == fp:
            kept.append(shard_entry(name, info))
    return kept


def verify_folder(out: Path, manifest: Dict[str, Any]) -> List[str]:
    r"""Problems of a folder against its manifest (empty: every shard sound and as listed).

    A complete folder: every listed shard must be there, sound, of the
    manifest's fingerprint, with the listed checksum and row count, and any
    other shard there must be a sound one of the same run (an interrupted
    rerun leaves those). An unfinished one: every shard there must be
    sound and of its fingerprint. Format-1 folders are checked for presence
    and row counts only (their shards have no checksum).
    """
    problems = []
    legacy = manifest.get("format") != FORMAT
    names = look(out).shards
    if manifest.get("status") == "complete":
        listed = {s["file"]: s for s in manifest.get("shards", [])}
        for name, entry in listed.items():
            info, problem = inspect_shard(out / name, require_digest=not legacy)
            if info is None:
                problems.append(f"{name} {problem}")
            elif info.meta.get("fingerprint") != manifest.get("fingerprint"):
                problems.append(f"{name} belongs to another run")
            elif info.rows != entry.get("rows") or (not legacy and info.digest != entry.get("digest")):
                problems.append(f"{name} is not the shard the manifest lists")
        for name in names:
            if name in listed:
                continue
            # a sound shard of the same run (e.g. an interrupted rerun's) mixes nothing; anything else does
            info, problem = inspect_shard(out / name, require_digest=not legacy)
            if info is None or info.meta.get("fingerprint") != manifest.get("fingerprint"):
                problems.append(f"{name} is not listed in the manifest ({problem or 'another run'})")
        return problems
    for name in names:
        info, problem = inspect_shard(out / name, require_digest=not legacy)
        if info is None:
            problems.append(f"{name} {problem}")
        elif info.meta.get("fingerprint") != manifest.get("fingerprint"):
            problems.append(f"{name} belongs to another run")
    return problems
