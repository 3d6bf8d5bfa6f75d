r""":func:`attribute_dataset` and the handle it returns, :class:`DatasetAttribution`."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from captum_normxlogit._core.normxlogit import NormXLogit
from captum_normxlogit._utils.atomic import is_own_temporary
from captum_normxlogit._utils.device import resolve_device
from captum_normxlogit._utils.memory import return_freed_heap
from captum_normxlogit.dataset import _targets
from captum_normxlogit.dataset._batching import CPU_BATCH_OVERHEAD_TOKENS, token_budget_batches
from captum_normxlogit.dataset._distributed import move_to, rank_context
from captum_normxlogit.dataset._manifest import (
    FORMAT,
    MANIFEST_NAME,
    ResumeError,
    describe_difference,
    fingerprint,
    manifest_task_name,
    model_identity,
    read_manifest,
    tokenizer_identity,
    write_manifest,
)
from captum_normxlogit.dataset._progress import RunProgress
from captum_normxlogit.dataset._sources import open_source
from captum_normxlogit.dataset._task import Task
from captum_normxlogit.dataset._writer import SHARD_PATTERN, rows_to_table, shard_name, shard_status, write_shard

__all__ = ["DatasetAttribution", "DatasetRowError", "attribute_dataset", "open_attribution"]

ON_ERROR = ("raise", "skip")


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

    def summary(self, **kwargs: Any) -> Any:
        r"""The dataset-level summary.

        Calls ``captum_normxlogit.dataset.summary.summarize(self.to_pandas(), **kwargs)``
        (special tokens taken from the manifest's tokenizer) when that module is
        installed; until then it returns :meth:`counts`.
        """
        if importlib.util.find_spec("captum_normxlogit.dataset.summary") is None:
            return self.counts()
        from captum_normxlogit.dataset.summary import summarize

        kwargs.setdefault("special_tokens", self.manifest.get("tokenizer", {}).get("special_tokens"))
        return summarize(self.to_pandas(), **kwargs)

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


def _ours(name: str) -> bool:
    return bool(SHARD_PATTERN.match(name)) or name == MANIFEST_NAME


def _check_folder(out: Path, manifest: Dict[str, Any], resume: bool) -> Optional[Dict[str, Any]]:
    r"""Refuse a folder holding something else, or another run when resuming (changes nothing).

    Returns the folder's manifest, if any.
    """
    if out.exists() and not out.is_dir():
        raise ResumeError(f"output_dir {out} is a file; pass a folder.")
    existing = read_manifest(out) if out.is_dir() else None
    if existing is None and out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if not is_own_temporary(p.name))
        if foreign:
            raise ResumeError(
                f"output_dir {out} is not empty ({', '.join(foreign[:3])}...) and holds no "
                f"{MANIFEST_NAME}: it was not written by attribute_dataset. Choose a new or empty folder."
            )
    if existing is not None and resume and existing.get("fingerprint") != manifest["fingerprint"]:
        raise ResumeError(
            f"output_dir {out} holds a run with other settings or another model "
            f"({describe_difference(existing, manifest)}); pass resume=False (CLI: --no-resume) "
            "to start over, or choose another folder."
        )
    return existing


def _clear(out: Path) -> None:
    r"""``resume=False``: remove this package's files (shards, manifest) and nothing else."""
    for path in out.iterdir():
        if _ours(path.name):
            path.unlink()


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
        limit (int, optional): Explain only the first ``limit`` examples. Default: None
        device (str or torch.device, optional): Run the model there (``"cpu"``, ``"cuda"``,
            ``"cuda:1"``). Under torchrun / accelerate launch: ``"cpu"`` or ``"cuda"`` (each rank
            its own GPU). Default: None (the model stays where it is; ranks take the GPUs when
            there are any)

    Returns:
        DatasetAttribution
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}.")
    for name, value in (("shard_size", shard_size), ("max_tokens_per_batch", max_tokens_per_batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be None or a non-negative int, got {limit!r}.")
    model = model_or_nx.model if isinstance(model_or_nx, NormXLogit) else model_or_nx
    ctx = rank_context(model, None if device is None else resolve_device(str(device), "device"))
    move_to(model, ctx)
    task = Task(
        model_or_nx,
        tokenizer,
        text_column=text_column,
        pair_column=pair_column,
        label_column=label_column,
        target=target,
        foil=foil,
        layers=layers,
        max_length=max_length,
        truncation=truncation,
    )
    source = open_source(data, task.columns())
    settings = {
        "task": manifest_task_name(task.task, task.is_regression),
        "text_column": text_column,
        "pair_column": pair_column,
        "label_column": label_column,
        "target": _targets.describe_spec(task.target),
        "foil": _targets.describe_spec(task.foil),
        "layers": task.layers or None,
        "max_length": max_length,
        "limit_tokens": task.limit,
        "truncation": task.truncation,
        "shard_size": shard_size,
    }
    from captum_normxlogit import __version__

    model_id = model_identity(model, task.adapter.task, task.adapter.n_layers, task.nx.multiplies_by_inputs)
    tok_id = tokenizer_identity(tokenizer)
    manifest: Dict[str, Any] = {
        "format": FORMAT,
        "package_version": __version__,
        "settings": settings,
        "model": model_id,
        "tokenizer": tok_id,
        "data": source.description,
        "fingerprint": fingerprint(settings, model_id, tok_id),
        "run": {
            "on_error": on_error,
            "max_tokens_per_batch": max_tokens_per_batch,
            "limit": limit,
            "world_size": ctx.world_size,
        },
        "status": "running",
        "shards": [],
    }
    out = Path(output_dir).expanduser()
    existing = _check_folder(out, manifest, resume)
    ctx.barrier()  # every rank has checked the folder before the main rank changes it
    if ctx.is_main:
        if existing is not None and not resume:
            _clear(out)
        if existing is None or not resume:  # a resumed folder keeps its manifest until the run completes
            out.mkdir(parents=True, exist_ok=True)
            write_manifest(out, manifest)
    ctx.barrier()

    started = time.perf_counter()
    # on a CPU a batch costs its padded tokens plus a little; elsewhere (launch-bound) about a whole batch
    overhead = CPU_BATCH_OVERHEAD_TOKENS if all(p.device.type == "cpu" for p in model.parameters()) else None
    shards, done = _run_shards(
        task,
        source,
        out,
        manifest["fingerprint"],
        ctx,
        shard_size,
        limit,
        on_error,
        max_tokens_per_batch,
        overhead,
        progress,
    )
    ctx.barrier()  # all ranks' shards are on disk
    if ctx.is_main:
        manifest["shards"] = _collect(out, shards, manifest["fingerprint"])
        manifest["status"] = "complete"
        manifest["totals"] = DatasetAttribution(out, manifest).counts()
        # wall time of this call's work (shards kept from an earlier run cost nothing here)
        manifest["run"]["seconds"] = round(time.perf_counter() - started, 3)
        manifest["run"].update(done)  # what this call kept from an earlier run and what it wrote
        write_manifest(out, manifest)
    ctx.barrier()
    return DatasetAttribution.open(out)


def _run_shards(
    task: Task,
    source,
    out: Path,
    fp: str,
    ctx,
    shard_size: int,
    limit: Optional[int],
    on_error: str,
    max_tokens: int,
    overhead: Optional[int],
    progress: bool,
) -> Tuple[List[Dict[str, Any]], Dict[str, Dict[str, int]]]:
    r"""Compute this rank's shards that are not finished yet.

    Returns every shard's (first_index, rows), and the rows and shards kept and written (all ranks).
    """
    total = source.length if limit is None else (limit if source.length is None else min(limit, source.length))
    bar = RunProgress(ctx, total, progress)
    seen: List[Dict[str, Any]] = []
    try:
        for shard, start, count, items in source.shards(shard_size, limit, wanted=ctx.owns):
            seen.append({"shard": shard, "first_index": start, "rows": count})
            if items is None:
                bar.shard_done(shard)
                continue
            path = out / shard_name(shard)
            inputs_hash = _inputs_hash([[i, r] for i, r in items])
            info = shard_status(path)
            same_rows = info is not None and info.indices == list(range(start, start + count))
            if info is not None and same_rows and info.meta.get("fingerprint") == fp:
                if info.meta.get("inputs_hash") != inputs_hash:
                    raise ResumeError(
                        f"{path} was written from other data (its examples differ from this run's "
                        f"rows {start}..{start + count - 1}); pass resume=False to start over."
                    )
                bar.kept(count)
                bar.shard_done(shard)
                continue
            examples, errors = task.prepare(items)
            if errors and on_error == "raise":
                first = min(errors, key=lambda row: row["index"])
                raise DatasetRowError(first["index"], first["error"])
            rows = list(errors)
            for batch in token_budget_batches([ex.length for ex in examples], max_tokens, overhead):
                chosen = [examples[i] for i in batch]
                rows.extend(task.run(chosen))
                bar.computed(len(chosen), sum(len(ex.ids) for ex in chosen))
            bar.computed(len(errors), 0)
            write_shard(path, rows_to_table(rows), {"fingerprint": fp, "shard": shard, "inputs_hash": inputs_hash})
            bar.wrote_shard()
            del rows, examples
            return_freed_heap()  # so a long run's resident memory does not grow shard after shard
            bar.shard_done(shard)
    except BaseException:
        bar.abandon()
        raise
    return seen, bar.close()


def _collect(out: Path, shards: List[Dict[str, Any]], fp: str) -> List[Dict[str, Any]]:
    r"""Check every shard on disk (main rank, after the barrier) and drop our files beyond the last shard."""
    listed = []
    for entry in shards:
        name = shard_name(entry["shard"])
        info = shard_status(out / name)
        expected = list(range(entry["first_index"], entry["first_index"] + entry["rows"]))
        if info is None or info.meta.get("fingerprint") != fp or info.indices != expected:
            raise RuntimeError(f"{out / name} is missing or incomplete after the run; rerun to redo it.")
        listed.append(
            {
                "file": name,
                "first_index": entry["first_index"],
                "rows": info.rows,
                "skipped": info.skipped,
                "tokens": info.tokens,
            }
        )
    keep = {entry["file"] for entry in listed}
    for path in out.iterdir():  # a previous, longer run's extra shards (ours: same fingerprint checked above)
        if SHARD_PATTERN.match(path.name) and path.name not in keep:
            path.unlink()
    return listed
