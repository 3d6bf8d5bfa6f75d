r"""Parquet shards: the fixed row schema, atomic writing, and the checks that make a shard trustworthy.

A shard is written whole to a hidden temporary name and renamed into place
(:func:`captum_normxlogit._utils.atomic.atomic_file`), so a file under its
final name is either complete or damaged by something outside this package
(a truncated copy, a full disk): :func:`shard_status` reads the footer and the
``index`` column back and says which.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from captum_normxlogit._utils.atomic import atomic_file

__all__ = [
    "COLUMNS",
    "SCHEMA",
    "SHARD_PATTERN",
    "ShardInfo",
    "rows_to_table",
    "shard_name",
    "shard_status",
    "write_shard",
]

#: Shard files: ``part-000000.parquet``, ``part-000001.parquet``, ... (6 digits, so name order is index order).
SHARD_PATTERN = re.compile(r"^part-(\d{6})\.parquet$")
_META_KEY = b"captum_normxlogit"

_F32_LIST = pa.list_(pa.float32())
#: One row per example; every column is always present (null where it does not apply), so every
#: shard has the same schema and pyarrow / ``datasets`` can read the folder as one table.
SCHEMA = pa.schema(
    [
        ("index", pa.int64()),
        ("text", pa.string()),
        ("text_pair", pa.string()),
        ("input_ids", pa.list_(pa.int32())),
        ("tokens", pa.list_(pa.string())),
        ("scores", _F32_LIST),
        ("layer_scores", pa.list_(_F32_LIST)),
        ("target", pa.int64()),
        ("target_label", pa.string()),
        ("foil", pa.int64()),
        ("prob", pa.float32()),
        ("predicted", pa.int64()),
        ("predicted_label", pa.string()),
        ("value", pa.float32()),
        ("output_ids", pa.list_(pa.int32())),
        ("output_tokens", pa.list_(pa.string())),
        ("output_probs", _F32_LIST),
        ("token_attr", pa.list_(_F32_LIST)),
        ("label", pa.string()),
        ("label_id", pa.int64()),
        ("error", pa.string()),
    ]
)
COLUMNS = tuple(SCHEMA.names)


def shard_name(shard: int) -> str:
    r"""File name of shard ``shard``."""
    if not 0 <= shard < 10**6:
        raise ValueError(f"shard number {shard} out of range: at most 10**6 shards; raise shard_size.")
    return f"part-{shard:06d}.parquet"


def _as_list(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def rows_to_table(rows: Sequence[Dict[str, Any]]) -> pa.Table:
    r"""Build a table with :data:`SCHEMA` from row dicts (missing keys are null), sorted by ``index``.

    Args:
        rows (sequence of dict): One dict per example; arrays may be numpy.

    Returns:
        *pyarrow.Table* with :data:`SCHEMA`.
    """
    rows = sorted(rows, key=lambda row: row["index"])
    arrays = []
    for field in SCHEMA:
        values = [_as_list(row.get(field.name)) for row in rows]
        arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def write_shard(path: Path, table: pa.Table, meta: Dict[str, Any]) -> None:
    r"""Write ``table`` to ``path`` atomically, with ``meta`` (JSON) in the file's key-value metadata.

    Args:
        path (pathlib.Path): The shard's final name.
        table (pyarrow.Table): Its rows.
        meta (dict): Stored under the ``captum_normxlogit`` key: the run's
            fingerprint, the shard number and a hash of its inputs.
    """
    schema = table.schema.with_metadata({_META_KEY: json.dumps(meta, sort_keys=True).encode()})
    with atomic_file(path) as tmp:
        pq.write_table(table.cast(schema), tmp, compression="zstd")


@dataclass(frozen=True)
class ShardInfo:
    r"""What a readable shard file says about itself.

    Attributes:
        rows (int): Number of rows.
        indices (list of int): The ``index`` column, in file order.
        meta (dict): The metadata :func:`write_shard` stored.
        skipped (int): Rows with an ``error``.
        tokens (int): Total number of input tokens.
    """

    rows: int
    indices: List[int]
    meta: Dict[str, Any]
    skipped: int
    tokens: int


def shard_status(path: Path) -> Optional[ShardInfo]:
    r"""Read a shard's footer and bookkeeping columns; ``None`` when it is missing or unreadable.

    A truncated or corrupt file fails here (no footer, bad pages), and a file
    whose schema is not :data:`SCHEMA` is also reported unreadable, so that
    resuming redoes it instead of trusting it.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path, columns=["index", "error", "input_ids"])
        schema = pq.read_schema(path)
        meta = json.loads((schema.metadata or {}).get(_META_KEY, b"{}"))
    except Exception:  # noqa: BLE001 - any failure to read means "not a finished shard"
        return None
    if schema.remove_metadata() != SCHEMA:
        return None
    indices = table.column("index").to_pylist()
    skipped = len(indices) - table.column("error").null_count
    # pyarrow.compute's functions are generated at import: its stubs do not list them.
    lengths = pc.list_value_length(table.column("input_ids"))  # type: ignore[attr-defined]
    tokens = int(pc.sum(lengths).as_py() or 0)  # type: ignore[attr-defined]
    return ShardInfo(len(indices), indices, meta, skipped, tokens)
