r""":func:`merge_attributions`: one folder from the per-node folders of a run whose nodes share no filesystem.

Under ``torchrun`` across nodes without a shared filesystem each node writes its
ranks' shards into its own copy of ``output_dir``, and only the node of rank 0
gets the manifest (it lists every rank's shards, with their checksums, from the
process group). Copy the folders to one machine and merge them: the manifests
present must agree (same fingerprint: settings, model, tokenizer, data), every
listed shard must be found sound with its listed checksum, and a shard found
twice must be the same bytes; anything else is refused with a sentence and
nothing is written.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

from captum_normxlogit._utils.atomic import atomic_file
from captum_normxlogit.dataset._folder import look, shard_entry
from captum_normxlogit.dataset._lock import folder_lock
from captum_normxlogit.dataset._manifest import FORMAT, MANIFEST_NAME, ResumeError, write_manifest
from captum_normxlogit.dataset._writer import inspect_shard

__all__ = ["merge_attributions"]


def _manifests(folders: List[Path]) -> Dict[str, Any]:
    r"""The one manifest the folders agree on (shard lists combined)."""
    found: List[Tuple[Path, Dict[str, Any]]] = []
    for folder in folders:
        manifest = look(folder).manifest
        if manifest is not None:
            found.append((folder, manifest))
    if not found:
        raise ResumeError(
            f"none of {', '.join(map(str, folders))} holds a {MANIFEST_NAME}; include the folder of the "
            "node that ran rank 0 (it writes the manifest)."
        )
    first_folder, first = found[0]
    for folder, manifest in found:
        if manifest.get("format") != FORMAT:
            raise ResumeError(
                f"{folder / MANIFEST_NAME} is of format {manifest.get('format')!r}, without shard checksums; "
                f"only folders of format {FORMAT!r} can be merged (rerun them with this version)."
            )
        if manifest.get("fingerprint") != first.get("fingerprint"):
            raise ResumeError(
                f"{folder} and {first_folder} hold different runs (fingerprints {manifest.get('fingerprint')} "
                f"and {first.get('fingerprint')}: other settings, model, tokenizer or data); merge only the "
                "folders of one run."
            )
        if manifest.get("status") != "complete":
            raise ResumeError(
                f"{folder / MANIFEST_NAME} says the run did not finish; rerun it (it resumes) before merging."
            )
    listed: Dict[str, Dict[str, Any]] = {}
    for _, manifest in found:
        for entry in manifest.get("shards", []):
            seen = listed.setdefault(entry["file"], entry)
            if seen.get("digest") != entry.get("digest"):
                raise ResumeError(
                    f"the manifests list two different {entry['file']} (other checksums); merge only the "
                    "folders of one run."
                )
    return {**first, "shards": sorted(listed.values(), key=lambda e: e["first_index"])}


def merge_attributions(
    folders: Sequence[Union[str, Path]],
    output_dir: Union[str, Path],
) -> Any:
    r"""Combine the per-node folders of one :func:`attribute_dataset` run into one folder.

    Checks first, writes after: the manifests present agree (one fingerprint,
    each complete, no shard listed twice with other checksums); every listed
    shard is found in one of the folders, sound, of the run's fingerprint and
    with its listed checksum; a shard found in several folders is the same
    there; no folder holds a shard of the run that the manifest does not list.
    Then the shards are copied into ``output_dir`` (each written whole under a
    temporary name) and the manifest is written last. The inputs are not
    changed.

    Args:
        folders (sequence of str or Path): The nodes' folders (at least one
            holds the manifest: rank 0's node).
        output_dir (str or Path): A new or empty folder for the merged run.

    Returns:
        DatasetAttribution: The merged folder.

    Raises:
        ResumeError: What does not match, in one sentence (nothing written).
        FolderBusyError: Another run holds ``output_dir``.
    """
    from captum_normxlogit.dataset.api import DatasetAttribution

    paths = [Path(folder).expanduser() for folder in folders]
    if not paths:
        raise ValueError("folders is empty; pass the per-node output folders of one run.")
    for path in paths:
        if not path.is_dir():
            raise ResumeError(f"{path} is not a folder; pass the per-node output folders of one run.")
    out = Path(output_dir).expanduser()
    if out.resolve() in {p.resolve() for p in paths}:
        raise ResumeError(f"output_dir {out} is one of the folders to merge; choose a new or empty folder.")
    manifest = _manifests(paths)
    fp = manifest["fingerprint"]
    sources: Dict[str, Path] = {}
    for entry in manifest["shards"]:
        name = entry["file"]
        for folder in paths:
            if not (folder / name).exists():
                continue
            info, problem = inspect_shard(folder / name)
            if info is None or info.meta.get("fingerprint") != fp or info.digest != entry.get("digest"):
                raise ResumeError(
                    f"{folder / name} is {problem or 'not the shard the manifest lists'}; rerun that node's "
                    "part of the run (it resumes and redoes it), then merge again."
                )
            sources.setdefault(name, folder / name)
        if name not in sources:
            raise ResumeError(
                f"no folder holds {name} (rows from {entry['first_index']}), which the manifest lists; add the "
                "folder of the node that wrote it."
            )
    for folder in paths:
        extra = [name for name in look(folder).shards if name not in sources]
        for name in extra:
            info, _ = inspect_shard(folder / name)
            if info is not None and info.meta.get("fingerprint") == fp:
                raise ResumeError(
                    f"{folder / name} is a shard of this run that no manifest lists; rerun the run (it resumes "
                    "and lists it), then merge again."
                )
    with folder_lock(out):
        state = look(out)
        if state.manifest is not None or state.shards or state.foreign:
            raise ResumeError(f"output_dir {out} is not empty; choose a new or empty folder for the merge.")
        entries: List[Dict[str, Any]] = []
        try:
            for name, source in sorted(sources.items()):
                with atomic_file(out / name) as tmp:
                    shutil.copyfile(source, tmp)
                info, problem = inspect_shard(out / name)
                if info is None:
                    raise ResumeError(f"{out / name} is {problem} after copying it; check the disk and merge again.")
                entries.append(shard_entry(name, info))
        except BaseException:  # a failed merge leaves no partial folder: remove what it copied
            for name in sources:
                with contextlib.suppress(FileNotFoundError):
                    (out / name).unlink()
            raise
        merged = {**manifest, "shards": entries, "merged_from": [str(p) for p in paths]}
        merged["totals"] = DatasetAttribution(out, merged).counts()
        write_manifest(out, merged)
    return DatasetAttribution.open(out)
