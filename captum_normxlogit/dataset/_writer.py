r"""Parquet shards: the fixed row schema, atomic writing, and the checks that make a shard trustworthy.

A shard is written whole to a hidden temporary name and renamed into place
(:func:`captum_normxlogit._utils.atomic.atomic_file`), so a file under its
final name is either complete or damaged by something outside this package
(a truncated copy, a full disk, a flipped byte): :func:`inspect_shard` reads the
footer and the ``index`` column back and checks the shard's checksum, and says which.

**Checksum.** Each shard's key-value metadata holds ``digest``: a BLAKE2b digest
of the file's bytes before the Parquet footer (the magic and every column chunk:
all the rows' data). Those bytes do not depend on the key-value metadata (the
footer holds it), so the shard is encoded once in memory to compute the digest
and then written with it. Checking it reads the file's bytes and hashes them
(no decoding); a damaged footer fails to read, or reads another schema or other
``index`` values.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

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
    "data_digest",
    "inspect_shard",
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


_DIGEST = "blake2b-256"


def _data_region(blob: bytes) -> Optional[bytes]:
    r"""The bytes of a Parquet file before its footer (None when the tail is not a Parquet tail)."""
    if len(blob) < 12 or blob[-4:] != b"PAR1":
        return None
    footer = struct.unpack("<I", blob[-8:-4])[0]
    end = len(blob) - 8 - footer
    return blob[:end] if end >= 4 else None


def data_digest(blob: bytes) -> Optional[str]:
    r"""The checksum :func:`write_shard` stores: BLAKE2b of a Parquet file's bytes before its footer.

    Args:
        blob (bytes): The whole file.

    Returns:
        *str* (``"blake2b-256:<hex>"``), or None when ``blob`` does not end like a Parquet file.
    """
    region = _data_region(blob)
    return None if region is None else f"{_DIGEST}:{hashlib.blake2b(region, digest_size=32).hexdigest()}"


def write_shard(path: Path, table: pa.Table, meta: Dict[str, Any]) -> None:
    r"""Write ``table`` to ``path`` atomically, with ``meta`` (JSON) and a checksum in its key-value metadata.

    Args:
        path (pathlib.Path): The shard's final name.
        table (pyarrow.Table): Its rows.
        meta (dict): Stored under the ``captum_normxlogit`` key: the run's
            fingerprint, the shard number and a hash of its inputs; ``digest``
            (see :func:`data_digest`) is added here.
    """
    with atomic_file(path) as tmp:
        schema = table.schema.with_metadata({_META_KEY: json.dumps(meta, sort_keys=True).encode()})
        draft = pa.BufferOutputStream()
        pq.write_table(table.cast(schema), draft, compression="zstd")
        digest = data_digest(draft.getvalue().to_pybytes())
        del draft
        meta = {**meta, "digest": digest}
        schema = table.schema.with_metadata({_META_KEY: json.dumps(meta, sort_keys=True).encode()})
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
        digest (str or None): Its checksum (checked; None for a shard of
            format 1, which had none).
    """

    rows: int
    indices: List[int]
    meta: Dict[str, Any]
    skipped: int
    tokens: int
    digest: Optional[str] = None


def inspect_shard(path: Path, require_digest: bool = True) -> Tuple[Optional[ShardInfo], str]:
    r"""Read a shard back and check it: ``(info, "")`` when sound, ``(None, problem)`` otherwise.

    Args:
        path (pathlib.Path): The shard file.
        require_digest (bool, optional): A shard without a checksum (written
            by format 1) is a problem. Default: True

    Returns:
        ``(ShardInfo, "")``, or ``(None, problem)`` with ``problem`` one of
        ``"missing"``, ``"unreadable"`` (no footer, bad pages, another schema),
        ``"not written by attribute_dataset"`` (no metadata of ours),
        ``"without a checksum"`` and ``"damaged (its checksum does not match its contents)"``.
    """
    path = Path(path)
    if not path.is_file():
        return None, "missing"
    try:
        blob = path.read_bytes()
        table = pq.read_table(pa.BufferReader(blob), columns=["index", "error", "input_ids"])
        kv = pq.read_metadata(pa.BufferReader(blob)).metadata or {}
        schema = pq.read_schema(pa.BufferReader(blob))
    except Exception:  # noqa: BLE001 - any failure to read means "not a finished shard"
        return None, "unreadable"
    if schema.remove_metadata() != SCHEMA:
        return None, "unreadable"
    try:
        meta = json.loads(kv[_META_KEY])
    except (KeyError, ValueError):
        return None, "not written by attribute_dataset"
    if not isinstance(meta, dict):
        return None, "not written by attribute_dataset"
    digest = meta.get("digest")
    if digest is None and require_digest:
        return None, "without a checksum"
    if digest is not None and digest != data_digest(blob):
        return None, "damaged (its checksum does not match its contents)"
    indices = table.column("index").to_pylist()
    skipped = len(indices) - table.column("error").null_count
    # pyarrow.compute's functions are generated at import: its stubs do not list them.
    lengths = pc.list_value_length(table.column("input_ids"))  # type: ignore[attr-defined]
    tokens = int(pc.sum(lengths).as_py() or 0)  # type: ignore[attr-defined]
    return ShardInfo(len(indices), indices, meta, skipped, tokens, digest), ""


def shard_status(path: Path) -> Optional[ShardInfo]:
    r"""Read a shard's footer, bookkeeping columns and checksum; ``None`` when it is missing, unreadable or damaged.

    A truncated or corrupt file fails here (no footer, bad pages, a checksum
    that does not match), and a file whose schema is not :data:`SCHEMA` is
    also reported unreadable, so that resuming redoes it instead of trusting
    it (:func:`inspect_shard` says which).
    """
    return inspect_shard(path)[0]
