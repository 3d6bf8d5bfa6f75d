r"""Whole datasets: NormXLogit over every example, streamed, resumable, across processes.

:func:`attribute_dataset` reads a dataset (a ``datasets.Dataset`` or
``IterableDataset``, a local ``.jsonl``/``.csv``/``.parquet``/``.arrow`` file,
or a list of strings), explains every example with one forward pass per
length-aware batch, and writes one Parquet row per example.

Output folder
-------------
::

    output_dir/part-000000.parquet    rows with index 0 .. shard_size-1
    output_dir/part-000001.parquet    the next shard_size rows, ...
    output_dir/.manifest.json         model, tokenizer, settings, shard list

Read it back with ``pandas.read_parquet(output_dir)``,
``datasets.load_dataset("parquet", data_dir=output_dir)`` or the returned
handle's ``.to_pandas()``; rows come in ``index`` order whatever the batching or
the number of processes. The manifest's name starts with a dot because both
readers take every other file of the folder for Parquet (a plain
``manifest.json`` makes both fail; ``_manifest.json`` still breaks
``datasets``). Shards are written to hidden temporary names and renamed whole.

Columns (schema :data:`SCHEMA`; every column is always there, null where it does not apply)
--------------------------------------------------------------------------------------------
==================  =====================  ==========================================================
``index``           int64                  the example's position in the data (0-based)
``text``            string                 the text as read (null if it was not a string)
``text_pair``       string                 the second text of a pair (``pair_column``)
``input_ids``       list<int32>            the ``T`` token ids explained (after truncation)
``tokens``          list<string>           ``convert_ids_to_tokens(input_ids)``
``scores``          list<float32>          NormXLogit per token, ``(T,)``; causal LM with a string
                                           target: ``token_attr.sum(0)`` (Captum's ``seq_attr``)
``layer_scores``    list<list<float32>>    ``(n_layers, T)`` for the manifest's ``settings.layers``
``target``          int64                  class / token id explained (teacher-forced: the id if it
                                           is one token, else null)
``target_label``    string                 its name: ``id2label`` or the decoded token(s)
``foil``            int64                  the contrast id (when ``foil`` is given)
``prob``            float32                the model's probability of ``target`` (teacher-forced:
                                           the product of ``output_probs``)
``predicted``       int64                  the model's argmax class / next token
``predicted_label`` string                 its name
``value``           float32                a regression head's output
``output_ids``      list<int32>            causal LM, string target: the continuation's ids
``output_tokens``   list<string>           ... and tokens
``output_probs``    list<float32>          ... and their probabilities
``token_attr``      list<list<float32>>    ... and the ``(n_out, n_in)`` matrix of LLMNormXLogit
``label``           string                 the gold label (``label_column``), as text
``label_id``        int64                  its class index when it names a class
``error``           string                 why the row was skipped (``on_error="skip"``); null if fine
==================  =====================  ==========================================================

Resume and bad rows
-------------------
Rerunning with the same settings, model, tokenizer and data skips every shard
whose file reads back sound (its checksum matches) with the right rows (and the
same inputs) and redoes a shard that is missing, unreadable or damaged, with a
warning; other settings, another model (any weight), another tokenizer
configuration or other data raise :class:`ResumeError` unless ``resume=False``
(which removes this package's files from the folder and starts over; a file it
cannot prove it wrote is refused). A smaller ``limit`` keeps every finished
shard. One run at a time holds the folder (:class:`FolderBusyError` for a
second); :func:`merge_attributions` combines per-node folders. See
``docs/dataset.md``, "Nothing lost, nothing mixed". With ``on_error="raise"`` the first bad row (empty or
non-string text, too long without ``truncation``, a masked LM text without
exactly one mask, a target value that names nothing) stops the run with
:class:`DatasetRowError` naming its index, before its shard is written;
``"skip"`` records it with ``error`` and goes on.

Several processes
-----------------
Run the same code under ``torchrun --nproc_per_node N`` (CPU: gloo) or
``accelerate launch --num_processes N``: rank ``r`` computes shards ``k`` with
``k % N == r`` on its own device, and rank 0 writes the manifest once all are
done, so the folder is the same as with one process. A model too large for one
device is instead loaded with ``device_map="auto"`` and run in one process.
"""

from captum_normxlogit.dataset._batching import CPU_BATCH_OVERHEAD_TOKENS, token_budget_batches
from captum_normxlogit.dataset._distributed import RankLostError
from captum_normxlogit.dataset._lock import FolderBusyError
from captum_normxlogit.dataset._manifest import MANIFEST_NAME, ManifestError, ResumeError
from captum_normxlogit.dataset._merge import merge_attributions
from captum_normxlogit.dataset._settings import DatasetSettings
from captum_normxlogit.dataset._sources import SourceError
from captum_normxlogit.dataset._targets import Column, TargetError, column
from captum_normxlogit.dataset._writer import SCHEMA
from captum_normxlogit.dataset.api import DatasetAttribution, DatasetRowError, attribute_dataset, open_attribution
from captum_normxlogit.dataset.compare import SummaryContrast, compare_summaries

# -- dataset-level explanations (summary, ablation check) ----------------------------------
from captum_normxlogit.dataset.summary import DEFAULT_STATISTIC, STATISTICS, DatasetSummary, summarize
from captum_normxlogit.dataset.verify import VerifiedSummary, verify_summary

__all__ = [
    "Column",
    "DatasetAttribution",
    "DatasetRowError",
    "DatasetSettings",
    "FolderBusyError",
    "MANIFEST_NAME",
    "ManifestError",
    "RankLostError",
    "ResumeError",
    "SCHEMA",
    "SourceError",
    "TargetError",
    "attribute_dataset",
    "column",
    "merge_attributions",
    "open_attribution",
    # dataset-level explanations
    "DEFAULT_STATISTIC",
    "DatasetSummary",
    "STATISTICS",
    "SummaryContrast",
    "VerifiedSummary",
    "compare_summaries",
    "summarize",
    "verify_summary",
    # the batching rule attribute_dataset applies (for benchmarks and callers batching alike)
    "CPU_BATCH_OVERHEAD_TOKENS",
    "token_budget_batches",
]
