r"""Where the examples come from: a ``datasets`` object, a local file, or Python lists, read as a stream.

Every source is read in its own order and numbered from 0; that number is the
row's ``index`` in the output. Shard ``k`` holds indices
``k * shard_size .. (k + 1) * shard_size - 1``. Only the columns a run needs are
read. Files are opened with ``datasets`` in streaming mode (nothing is copied to
a cache and memory does not grow with the file) from local paths only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from captum_normxlogit.dataset._read_errors import check_regular_file, quiet_datasets, read_error

__all__ = ["FILE_BUILDERS", "Source", "open_source"]

#: File suffix -> ``datasets`` builder.
FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".arrow": "arrow"}

#: How much of a file ``datasets`` reads at once, per builder. Its json default (10 MB) made the
#: streaming window grow with the file up to that size: it holds the chunk as bytes and as an Arrow
#: table and parses the whole first chunk into Python dicts (a mixed-type check). Reading the first
#: 1,024 rows of a 4.9 MB ``.jsonl`` (40,000 short sentences) peaked 35 MiB above the start with
#: the default, 12 MiB with 1 MiB chunks; a file under 1 MiB is read exactly as before.
READ_CHUNKS = {"json": {"chunksize": 1 << 20}}

Record = Dict[str, Any]


class SourceError(ValueError):
    r"""The data cannot be read as asked (missing, empty or unreadable file, a parse error, a missing
    column, an unsupported type); the message names the file (and line) and what to do."""


@dataclass
class Source:
    r"""A numbered stream of records holding the requested columns.

    Attributes:
        description (dict): What the data is (kind, path, length), for the manifest.
        length (int or None): Number of examples when known without reading them all.
    """

    description: Dict[str, Any]
    length: Optional[int]
    _rows: Any
    _columns: Tuple[str, ...]
    _map_style: bool
    _path: Optional[Path] = None  # a local file: its read errors become one sentence naming it

    def shards(
        self, shard_size: int, limit: Optional[int] = None, wanted: Optional[Callable[[int], bool]] = None
    ) -> Iterator[Tuple[int, int, int, Optional[List[Tuple[int, Record]]]]]:
        r"""Yield ``(shard, first_index, n_rows, items)`` for every shard, in order.

        Args:
            shard_size (int): Examples per shard.
            limit (int, optional): Read only the first ``limit`` examples.
            wanted (callable, optional): ``wanted(shard) -> bool``. Other shards
                come with ``items=None`` (their records are not built; map-style
                data is not even read). Default: every shard
        Yields:
            ``items`` is ``[(index, record), ...]`` with ``record`` a dict of the
            requested columns.
        """
        total = self.length if limit is None else (limit if self.length is None else min(limit, self.length))
        if self._map_style:
            assert total is not None
            for shard, start in enumerate(range(0, total, shard_size)):
                stop = min(start + shard_size, total)
                if wanted is not None and not wanted(shard):
                    yield shard, start, stop - start, None
                else:
                    yield shard, start, stop - start, list(zip(range(start, stop), self._slice(start, stop)))
            return
        stream = iter(self._rows)
        if limit is not None:
            stream = itertools.islice(stream, limit)
        for shard in itertools.count():
            chunk = self._read(stream, shard_size)
            if not chunk:
                return
            start = shard * shard_size
            if wanted is not None and not wanted(shard):
                yield shard, start, len(chunk), None
            else:
                yield shard, start, len(chunk), [(start + i, self._record(row)) for i, row in enumerate(chunk)]

    def _read(self, stream: Iterable[Any], n: int) -> List[Any]:
        if self._path is None:
            return list(itertools.islice(stream, n))
        try:
            with quiet_datasets():
                return list(itertools.islice(stream, n))
        except Exception as error:  # noqa: BLE001 - any reader failure is the file's, said in one sentence
            raise SourceError(read_error(self._path, error)) from error

    def _record(self, row: Any) -> Record:
        if isinstance(row, str) or not isinstance(row, dict):
            return {self._columns[0]: row}  # a list of strings: each is the text, whatever its column's name
        return {name: row.get(name) for name in self._columns}

    def _slice(self, start: int, stop: int) -> List[Record]:
        rows = self._rows
        if isinstance(rows, list):
            return [self._record(row) for row in rows[start:stop]]
        batch = rows[start:stop]  # datasets.Dataset: dict of columns
        return [{name: batch[name][i] for name in self._columns} for i in range(stop - start)]


def _check_columns(available: Optional[Sequence[str]], columns: Sequence[str], what: str) -> None:
    if available is None:
        return
    missing = [c for c in columns if c not in available]
    if missing:
        raise SourceError(
            f"{what} has no column {missing[0]!r}; its columns are {list(available)}. "
            "Pass text_column=/pair_column=/label_column= (CLI: --text-column ...) to name yours."
        )


def open_source(data: Any, columns: Sequence[str]) -> Source:
    r"""Wrap ``data`` as a :class:`Source` reading ``columns``.

    Args:
        data: A ``datasets.Dataset`` or ``IterableDataset``; a path (str or
            ``Path``) to a local ``.jsonl``/``.json``/``.csv``/``.parquet``/``.arrow``
            file; a list of strings (each is the text, read as the first of
            ``columns`` whatever its name) or of dicts.
        columns (sequence of str): Columns to read (text first).

    Returns:
        Source
    """
    columns = tuple(dict.fromkeys(columns))
    module = type(data).__module__ or ""
    if module.startswith("datasets"):
        kind = type(data).__name__
        if kind == "DatasetDict":
            raise SourceError(f"data is a DatasetDict with splits {list(data)}; pass one split, e.g. data['test'].")
        available = getattr(data, "column_names", None)
        _check_columns(available, columns, f"the {kind}")
        if kind == "Dataset":
            fingerprint = getattr(data, "_fingerprint", None)
            return Source(
                {"kind": "Dataset", "rows": len(data), "fingerprint": fingerprint},
                len(data),
                data.select_columns(list(columns)),
                columns,
                True,
            )
        if kind == "IterableDataset":
            if available is not None:
                data = data.select_columns(list(columns))
            return Source({"kind": "IterableDataset"}, None, data, columns, False)
        raise SourceError(f"data is a {kind}; pass a datasets.Dataset or IterableDataset.")
    if isinstance(data, (str, Path)):
        return _open_file(Path(data).expanduser(), columns)
    if isinstance(data, (list, tuple)):
        if data and isinstance(data[0], dict):
            _check_columns(list(data[0]), columns, "the first record of data")
        elif len(columns) > 1:
            raise SourceError(
                f"data is a list of strings, which has only a text; it has no column {columns[1]!r}. "
                "Pass a list of dicts or a dataset to use pair/label/target columns."
            )
        return Source({"kind": "list", "rows": len(data)}, len(data), list(data), columns, True)
    raise SourceError(
        f"data must be a datasets.Dataset or IterableDataset, a local file path or a list of strings; "
        f"got {type(data).__name__}."
    )


def _open_file(path: Path, columns: Sequence[str]) -> Source:
    builder = FILE_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise SourceError(f"{path}: unsupported file type {path.suffix!r}; use one of {sorted(FILE_BUILDERS)}.")
    problem = check_regular_file(path)
    if problem is not None:
        raise SourceError(f"{path}: {problem}.")
    try:
        with quiet_datasets():
            length, stream, available = _open_stream(path, builder, columns)
    except SourceError:
        raise
    except Exception as error:  # noqa: BLE001 - the reader's raw wording, translated into a sentence
        raise SourceError(read_error(path, error)) from error
    if length == 0 or available is None:
        raise SourceError(f"{path} {_no_rows(path, builder)}; pass a file with at least one example.")
    _check_columns(available, columns, str(path))
    stat = path.stat()
    description = {"kind": "file", "path": str(path.resolve()), "bytes": stat.st_size}
    if length is not None:
        description["rows"] = length
    return Source(description, length, stream, tuple(columns), False, path)


def _open_stream(path: Path, builder: str, columns: Sequence[str]) -> Tuple[Optional[int], Any, Optional[List[str]]]:
    r"""``(rows if cheap to count, the streaming dataset, its columns or None when it has no rows)``."""
    import datasets

    from captum_normxlogit.dataset._progress import count_file_rows

    length = count_file_rows(path)  # cheap counts only (a footer, lines, csv records): the bar's total
    if length == 0:  # datasets cannot even infer the (missing) columns of an empty file
        return 0, None, None
    stream = datasets.load_dataset(
        builder, data_files=str(path.resolve()), split="train", streaming=True, **READ_CHUNKS.get(builder, {})
    )
    available = list(stream.features) if stream.features is not None else None
    if available is None:  # json / csv: the columns are known once the first row is read
        first = next(iter(stream), None)
        if first is None:
            return 0, stream, None
        available = list(first)
    return length, stream, available


def _no_rows(path: Path, builder: str) -> str:
    if builder == "csv" and path.stat().st_size > 0:
        return "has a header line but no rows"
    if builder == "parquet" and path.stat().st_size > 0:
        return "has columns but no rows"
    return "has no rows (it is empty or holds only blank lines)"
