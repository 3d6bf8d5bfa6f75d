r""":func:`attribute_dataset` and the handle it returns, :class:`DatasetAttribution`."""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import torch

from captum_normxlogit._core.normxlogit import NormXLogit
from captum_normxlogit._utils.device import resolve_device
from captum_normxlogit._utils.memory import return_freed_heap, steady_memory
from captum_normxlogit.dataset._batching import CPU_BATCH_OVERHEAD_TOKENS, token_budget_batches
from captum_normxlogit.dataset._distributed import move_to, rank_context
from captum_normxlogit.dataset._explainer import RowExplainer
from captum_normxlogit.dataset._folder import check_folder, clear_folder, kept_shards, shard_entry, verify_folder
from captum_normxlogit.dataset._lock import folder_lock, gather
from captum_normxlogit.dataset._manifest import (
    FORMAT,
    MANIFEST_NAME,
    ResumeError,
    file_digest,
    fingerprint,
    model_identity,
    read_manifest,
    records_digest,
    tokenizer_identity,
    write_manifest,
)
from captum_normxlogit.dataset._progress import RunProgress
from captum_normxlogit.dataset._settings import DatasetSettings
from captum_normxlogit.dataset._sources import open_source
from captum_normxlogit.dataset._writer import inspect_shard, rows_to_table, shard_name, write_shard

__all__ = ["DatasetAttribution", "DatasetRowError", "DatasetSettings", "attribute_dataset", "open_attribution"]


class DatasetRowError(ValueError):
    r"""An example cannot be explained (``on_error="raise"``); ``.index`` is its row index."""

    def __init__(self, index: int, problem: str) -> None:
        super().__init__(f"row {index}: {problem} (pass on_error='skip' to record it and go on)")
        self.index, self.problem = index, problem


class DatasetAttribution:
    r"""A finished (or resumable) output folder of :func:`attribute_dataset`.

    Attributes:
        output_dir (pathlib.Path): The folder.
        manifest (dict): Its ``.manifest.json``.
    """

    def __init__(self, output_dir: Union[str, Path], manifest: Dict[str, Any]) -> None:
        self.output_dir = Path(output_dir)
        self.manifest = manifest
        self._model: Any = None  # set by attribute_dataset, for summary(verify=True)
        self._tokenizer: Any = None

    @classmethod
    def open(cls, output_dir: Union[str, Path]) -> "DatasetAttribution":
        r"""Open a folder written by :func:`attribute_dataset` (it must hold ``.manifest.json``)."""
        manifest = read_manifest(Path(output_dir))
        if manifest is None:
            raise FileNotFoundError(f"{output_dir} holds no {MANIFEST_NAME}; it was not written by attribute_dataset.")
        return cls(output_dir, manifest)

    @property
    def files(self) -> List[Path]:
        r"""The shard files, in index order."""
        return [self.output_dir / shard["file"] for shard in self.manifest.get("shards", [])]

    @property
    def complete(self) -> bool:
        r"""Whether every shard was written (False after an interrupted run: rerun to resume)."""
        return self.manifest.get("status") == "complete"

    @property
    def legacy(self) -> bool:
        r"""Whether an earlier version wrote the folder (format 1: read, but its shards carry no
        checksums, and a run does not resume into it)."""
        return self.manifest.get("format") != FORMAT

    def check(self) -> List[str]:
        r"""What is wrong with the folder against its manifest; an empty list when nothing is.

        Every listed shard must be on disk, sound (its checksum matches its
        contents), of the manifest's run and as listed; a complete folder may
        hold no other shard. Reads every shard's bytes once.

        Returns:
            *list of str*: One phrase per problem (e.g. ``"part-000003.parquet missing"``).
        """
        return verify_folder(self.output_dir, self.manifest)

    def counts(self) -> Dict[str, int]:
        r"""``{"rows", "skipped", "tokens", "shards"}`` from the manifest."""
        shards = self.manifest.get("shards", [])
        return {
            "rows": sum(s["rows"] for s in shards),
            "skipped": sum(s["skipped"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards),
            "shards": len(shards),
        }

    def to_pandas(self, columns: Optional[Sequence[str]] = None):
        r"""All rows as a ``pandas.DataFrame`` in ``index`` order (``pandas.read_parquet`` on the folder)."""
        import pandas as pd

        return pd.read_parquet(self.output_dir, columns=list(columns) if columns else None)

    def to_dataset(self, **kwargs: Any):
        r"""All rows as a ``datasets.Dataset`` (``load_dataset("parquet", data_dir=..., split="train")``)."""
        import datasets

        return datasets.load_dataset("parquet", data_dir=str(self.output_dir), split="train", **kwargs)

    def summary(self, *, verify: bool = False, model: Any = None, tokenizer: Any = None, **kwargs: Any) -> Any:
        r"""The dataset-level summary, verified by occlusion on request.

        Calls ``captum_normxlogit.dataset.summary.summarize(self.to_pandas(), **kwargs)``
        (special tokens taken from the manifest's tokenizer).

        Args:
            verify (bool, optional): Also measure the occlusion effect of each class's top
                candidates (:func:`~captum_normxlogit.dataset.verify.verify_summary`, cached in
                this folder). Default: False
            model, tokenizer (optional): For ``verify``; default: the ones that wrote this
                handle (the return value of :func:`attribute_dataset`). Default: None
            **kwargs: For ``summarize`` (``statistic``, ``min_count``, ...) and, with ``verify``,
                ``top_k``, ``max_examples``, ``seed``, ``max_tokens_per_batch``.

        Returns:
            DatasetSummary, or VerifiedSummary with ``verify``
        """
        from captum_normxlogit.dataset.summary import summarize

        checks = {k: kwargs.pop(k) for k in ("top_k", "max_examples", "seed", "max_tokens_per_batch") if k in kwargs}
        kwargs.setdefault("special_tokens", self.manifest.get("tokenizer", {}).get("special_tokens"))
        summary = summarize(self.to_pandas(), **kwargs)
        if not verify:
            return summary
        from captum_normxlogit.dataset.verify import verify_summary

        model = model if model is not None else self._model
        tokenizer = tokenizer if tokenizer is not None else self._tokenizer
        if model is None:
            raise ValueError(
                "verify=True needs the model: pass model= and tokenizer= (a handle from attribute_dataset() "
                "keeps its own)."
            )
        rows_weights = self.manifest.get("model", {}).get("weights_digest")  # reuse the stored prob if the same model
        return verify_summary(summary, model, tokenizer, cache_dir=self.output_dir, rows_weights=rows_weights, **checks)

    def __repr__(self) -> str:
        c = self.counts()
        return (
            f"DatasetAttribution({str(self.output_dir)!r}, rows={c['rows']}, skipped={c['skipped']}, "
            f"tokens={c['tokens']}, shards={c['shards']}, status={self.manifest.get('status')!r})"
        )


def open_attribution(output_dir: Union[str, Path]) -> DatasetAttribution:
    r"""Same as :meth:`DatasetAttribution.open`."""
    return DatasetAttribution.open(output_dir)


def _inputs_hash(items: Sequence) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _data_description(data: Any, description: Dict[str, Any]) -> Dict[str, Any]:
    r"""The source's description with its identity: a file's content digest, a list's records digest."""
    description = dict(description)
    if description.get("kind") == "file":
        description["digest"] = file_digest(Path(description["path"]))
    elif description.get("kind") == "list":
        description["digest"] = records_digest(data)
    return description


def attribute_dataset(
    model_or_nx: Any,
    tokenizer: Any,
    data: Any,
    output_dir: Union[str, Path],
    *,
    text_column: str = "text",
    pair_column: Optional[str] = None,
    label_column: Optional[str] = None,
    target: Any = None,
    foil: Any = None,
    layers: Union[None, str, int, Sequence[int]] = None,
    max_tokens_per_batch: int = 8192,
    max_length: Optional[int] = None,
    truncation: bool = False,
    shard_size: int = 1024,
    resume: bool = True,
    on_error: str = "raise",
    progress: bool = True,
    limit: Optional[int] = None,
    device: Union[None, str, Any] = None,
    settings: Optional[DatasetSettings] = None,
) -> DatasetAttribution:
    r"""Explain every example of a dataset with NormXLogit and write the rows as Parquet shards.

    See :mod:`captum_normxlogit.dataset` for the output layout, the columns and
    the resume rules.

    Args:
        model_or_nx (nn.Module or NormXLogit): A sequence classifier (also
            regression), masked LM or causal LM, or a :class:`NormXLogit` on one
            (its ``multiply_by_inputs`` and adapter are used; its ``layer`` must
            be None).
        tokenizer: The model's Hugging Face tokenizer.
        data: A ``datasets.Dataset`` / ``IterableDataset``, a local
            ``.jsonl``/``.csv``/``.parquet``/``.arrow`` file, or a list of
            strings (or of dicts).
        output_dir (str or Path): The folder to write (created if needed).
        text_column (str, optional): Default: ``"text"``
        pair_column (str, optional): Second text of sentence pairs (with
            ``token_type_ids`` where the model has them). Default: None
        label_column (str, optional): Gold label, stored as ``label`` (and its
            class index as ``label_id``). Default: None
        target (None, int, str or column(name), optional): ``None``: the model's
            prediction. A class index or label name (classifier), a token id or
            one-token string (masked LM; causal LM: an int is the next token),
            or :func:`column` to read it per example. For a causal LM a string
            (fixed or from a column) is a continuation, teacher-forced: the row
            gets the ``(n_out, n_in)`` ``token_attr`` matrix. Default: None
        foil (optional): A contrastive alternative, same forms as ``target``.
            Default: None
        layers (None, "all", int or list of int, optional): Also store
            ``layer_scores`` for these hidden states (0 = embeddings). Default: None
        max_tokens_per_batch (int, optional): Budget of ``batch_size *
            padded_length`` (an upper bound: on a CPU the batches are cut to
            the least padding plus a small per-batch cost and are mostly
            smaller; on an accelerator as few batches as the budget allows,
            with the least padding among them). Default: 8192
        max_length (int, optional): Token limit below the model's own. Default: None
        truncation (bool, optional): Cut over-long texts (classifiers and masked
            LMs keep the start, causal LMs the end) instead of treating them as
            bad rows. Default: False
        shard_size (int, optional): Examples per shard (also the length-sorting
            window). Default: 1024
        resume (bool, optional): Keep finished shards of an earlier run with the
            same settings; False starts over. Default: True
        on_error (str, optional): ``"raise"`` stops at the first bad row (before
            its shard is written); ``"skip"`` records it with ``error``. Default: ``"raise"``
        progress (bool, optional): Show a tqdm bar on stderr (examples/s, tokens/s; a total and
            an ETA when the rows can be counted; under several ranks, every rank's rows). Default: True
        limit (int, optional): Explain only the first ``limit`` examples; finished
            shards beyond it (or longer than its last one) from an earlier run of
            the same fingerprint are kept and listed. Default: None
        device (str or torch.device, optional): Run the model there (``"cpu"``, ``"cuda"``,
            ``"cuda:1"``). Under torchrun / accelerate launch: ``"cpu"`` or ``"cuda"`` (each rank
            its own GPU). Default: None (the model stays where it is; ranks take the GPUs when
            there are any)
        settings (DatasetSettings, optional): All of the settings above from
            ``text_column`` to ``limit`` in one object (the keywords build one
            when it is None; with it, a keyword that differs from its default
            is refused). Default: None

    Returns:
        DatasetAttribution

    Raises:
        ResumeError: The folder holds another run, or files the package cannot prove it wrote.
        FolderBusyError: Another run holds the folder's lock.
    """
    given = dict(
        text_column=text_column, pair_column=pair_column, label_column=label_column, target=target, foil=foil,
        layers=layers, max_tokens_per_batch=max_tokens_per_batch, max_length=max_length, truncation=truncation,
        shard_size=shard_size, resume=resume, on_error=on_error, progress=progress, limit=limit,
    )  # fmt: skip
    s = _settings_from(settings, given)
    model = model_or_nx.model if isinstance(model_or_nx, NormXLogit) else model_or_nx
    out = Path(output_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ResumeError(f"output_dir {out} is a file; pass a folder.")
    ctx = rank_context(model, None if device is None else resolve_device(str(device), "device"))
    move_to(model, ctx)
    task = RowExplainer(model_or_nx, tokenizer, **s.task_arguments())
    source = open_source(data, task.columns())
    from captum_normxlogit import __version__

    row_settings = s.row_settings(task)
    model_id = model_identity(model, task.adapter.task, task.adapter.n_layers, task.nx.multiplies_by_inputs)
    tok_id = tokenizer_identity(tokenizer)
    data_id = _data_description(data, source.description)
    manifest: Dict[str, Any] = {
        "format": FORMAT,
        "package_version": __version__,
        "settings": row_settings,
        "model": model_id,
        "tokenizer": tok_id,
        "data": data_id,
        "fingerprint": fingerprint(row_settings, model_id, tok_id, data_id),
        "run": s.run_settings(ctx.world_size),
        "status": "running",
        "shards": [],
    }
    with folder_lock(out, ctx):
        state = check_folder(out, manifest, s.resume)
        ctx.barrier()  # every rank has checked the folder before the main rank changes it
        if ctx.is_main:
            if not s.resume:
                clear_folder(out, state)
            if state.manifest is None or not s.resume:  # a resumed folder keeps its manifest until complete
                write_manifest(out, manifest)
        ctx.barrier()
        started = time.perf_counter()
        # on a CPU a batch costs its padded tokens plus a little; elsewhere (launch-bound) about a whole batch
        on_cpu = all(p.device.type == "cpu" for p in model.parameters())
        overhead = CPU_BATCH_OVERHEAD_TOKENS if on_cpu else None
        listed = {entry.get("file") for entry in (state.manifest or {}).get("shards", [])} if s.resume else set()
        # allocator settings that keep a long run's memory flat (see steady_memory)
        with steady_memory(cpu_float32=on_cpu and all(p.dtype == torch.float32 for p in model.parameters())):
            mine, done_counts = _run_shards(task, source, out, manifest["fingerprint"], ctx, s, overhead, listed)
        # every rank checked its own shards; the main rank lists them all (a node's folder need not be shared)
        entries = [entry for part in gather(ctx, mine) for entry in part]
        if ctx.is_main:
            done = {entry["file"] for entry in entries}
            entries += kept_shards(out, done, manifest["fingerprint"])  # e.g. beyond a smaller limit
            manifest["shards"] = sorted(entries, key=lambda entry: entry["first_index"])
            manifest["status"] = "complete"
            manifest["totals"] = DatasetAttribution(out, manifest).counts()
            # wall time of this call's work (shards kept from an earlier run cost nothing here)
            manifest["run"]["seconds"] = round(time.perf_counter() - started, 3)
            manifest["run"].update(done_counts)  # what this call kept from an earlier run and what it wrote
            write_manifest(out, manifest)
        ctx.barrier()
    handle = DatasetAttribution.open(out)
    handle._model, handle._tokenizer = model, tokenizer  # for handle.summary(verify=True)
    return handle


def _settings_from(settings: Optional[DatasetSettings], given: Dict[str, Any]) -> DatasetSettings:
    r"""The run's settings: ``settings`` itself, or one built from the keywords."""
    if settings is None:
        return DatasetSettings(**given)
    if not isinstance(settings, DatasetSettings):
        raise TypeError(f"settings must be a DatasetSettings, got {type(settings).__name__}.")
    default = DatasetSettings()
    changed = [name for name, value in given.items() if value != getattr(default, name)]
    if changed:
        raise ValueError(
            f"pass the settings either as settings= or as keywords, not both (got settings= and {changed[0]}=); "
            f"use settings.replace({changed[0]}=...)."
        )
    return settings


def _run_shards(
    task: RowExplainer,
    source,
    out: Path,
    fp: str,
    ctx,
    s: DatasetSettings,
    overhead: Optional[int],
    listed: Set[str],
) -> Tuple[List[Dict[str, Any]], Dict[str, Dict[str, int]]]:
    r"""Compute this rank's shards that are not finished yet.

    Returns the manifest entries of this rank's shards, and the rows and shards kept and written (all
    ranks). A file in the way is replaced only when it is ours: our metadata (a damaged shard of
    ours) or a name ``listed`` by the folder's manifest.
    """
    limit = s.limit
    total = source.length if limit is None else (limit if source.length is None else min(limit, source.length))
    bar = RunProgress(ctx, total, s.progress)
    entries: List[Dict[str, Any]] = []
    try:
        for shard, start, count, items in source.shards(s.shard_size, limit, wanted=ctx.owns):
            if items is None:
                bar.shard_done(shard)
                continue
            path = out / shard_name(shard)
            inputs_hash = _inputs_hash([[i, r] for i, r in items])
            info, problem = inspect_shard(path)
            wanted = list(range(start, start + count))
            if info is not None and info.meta.get("fingerprint") == fp and info.indices[:count] == wanted:
                # a finished shard of this run; one longer than asked (a smaller limit) is kept whole
                if info.rows == count and info.meta.get("inputs_hash") != inputs_hash:
                    raise ResumeError(
                        f"{path} was written from other data (its examples differ from this run's "
                        f"rows {start}..{start + count - 1}); pass resume=False to start over."
                    )
                entries.append(shard_entry(path.name, info))
                bar.kept(count)
                bar.shard_done(shard)
                continue
            if problem in ("unreadable", "not written by attribute_dataset") and path.name not in listed:
                raise ResumeError(
                    f"{path} is {problem} and no {MANIFEST_NAME} lists it: attribute_dataset cannot prove it "
                    "wrote it and will not replace it; move it away or choose another folder."
                )
            if problem not in ("", "missing"):
                warnings.warn(f"{path} is {problem}; redoing it.", stacklevel=3)
            examples, errors = task.prepare(items)
            if errors and s.on_error == "raise":
                first = min(errors, key=lambda row: row["index"])
                raise DatasetRowError(first["index"], first["error"])
            rows = list(errors)
            for batch in token_budget_batches([ex.length for ex in examples], s.max_tokens_per_batch, overhead):
                chosen = [examples[i] for i in batch]
                rows.extend(task.run(chosen))
                bar.computed(len(chosen), sum(len(ex.ids) for ex in chosen))
            bar.computed(len(errors), 0)
            write_shard(path, rows_to_table(rows), {"fingerprint": fp, "shard": shard, "inputs_hash": inputs_hash})
            bar.wrote_shard()
            del rows, examples
            written, problem = inspect_shard(path)  # read back: the manifest lists what is on disk
            if written is None or written.indices != wanted:
                raise RuntimeError(f"{path} is {problem or 'not as written'} after writing it; rerun to redo it.")
            entries.append(shard_entry(path.name, written))
            return_freed_heap()  # so a long run's resident memory does not grow shard after shard
            bar.shard_done(shard)
    except BaseException:
        bar.abandon()
        raise
    return entries, bar.close()
