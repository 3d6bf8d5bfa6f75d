r"""What went wrong reading a local data file, as one sentence: the file, the line when it can be
found, and what to do.

The readers (``datasets``' json / csv / parquet / arrow builders, i.e. pyarrow and pandas) say
"JSON parse error: Invalid encoding in string. in row 0" or "Error tokenizing data. C error: EOF
inside string starting at row 1". Only when a read has failed is the file scanned again here,
line by line with Python's own decoders, to find the first line that is not UTF-8 or not a JSON
object; a file that reads cleanly costs nothing extra.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import re
from pathlib import Path
from typing import Iterator, Optional, Tuple

__all__ = ["check_regular_file", "quiet_datasets", "read_error"]

_JSON_REASONS = (
    ("Unterminated string", "a string is not closed (a missing quote, or a raw line break inside it)"),
    ("Invalid control character", "a string holds a raw control character (write a line break as \\n)"),
    ("Expecting property name", "a key is not in double quotes"),
    ("Expecting ',' delimiter", "a comma is missing between two values"),
    ("Expecting ':' delimiter", "a colon is missing after a key"),
    ("Extra data", "more than one JSON value on the line"),
    ("Expecting value", "it is not JSON"),
)
_OS_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "it is a folder",
    errno.EIO: "an input/output error",
    errno.ENOENT: "it disappeared while being read",
}
_TEXT_ADVICE = "save it as UTF-8 (e.g. iconv -f latin1 -t utf-8, or pandas' to_csv/to_json, which write UTF-8)"


def check_regular_file(path: Path) -> Optional[str]:
    r"""Why ``path`` cannot be opened as a data file (missing, a folder, a FIFO or device), or None."""
    if path.is_file():
        return None
    if path.is_dir():
        return "is a folder, not a file; pass the data file inside it"
    if path.exists():  # a FIFO would block the reader forever
        return "is not a regular file (a FIFO, device or socket); pass a file on disk"
    if path.is_symlink():
        return "is a broken symbolic link; pass the file it should point to"
    return "no such file; check the path"


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    r"""``datasets`` logs a reader's failure ("Failed to load JSON from file ...") before raising it;
    the error becomes one sentence here, so the log line is held back while reading."""
    import datasets  # noqa: F401 - configures its logger on import: read the level after that

    logger = logging.getLogger("datasets")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _first_bad_utf8(path: Path) -> Optional[Tuple[int, int, int]]:
    r"""``(line, column, byte)`` of the first byte that is not UTF-8 (1-based), or None."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                return number, error.start + 1, line[error.start]
    return None


def _first_bad_json_line(path: Path) -> Optional[Tuple[int, str]]:
    r"""``(line, reason)`` of the first non-blank line that is not one JSON object, or None."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                value = json.loads(text)
            except ValueError as error:
                reason = next((words for key, words in _JSON_REASONS if key in str(error)), str(error))
                return number, reason
            if not isinstance(value, dict):
                return number, f"it is a JSON {type(value).__name__}, not an object"
    return None


def _json_document_ok(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except ValueError:
        return False
    return True


def _csv_reason(message: str) -> Tuple[Optional[int], str]:
    r"""``(line, reason)`` from pandas' tokenizer message (its rows count from 0, the header included)."""
    eof = re.search(r"EOF inside string starting at row (\d+)", message)
    if eof:
        return int(eof.group(1)) + 1, 'a quoted field is never closed (a missing ")'
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if fields:
        expected, line, saw = fields.groups()
        return int(line), f"{saw} fields where the header has {expected} (an unquoted comma?)"
    return None, " ".join(message.split())


def read_error(path: Path, error: BaseException) -> str:
    r"""One sentence for ``error``, raised while reading the data file ``path``.

    Args:
        path (pathlib.Path): The data file.
        error (BaseException): What the reader raised.

    Returns:
        str: ``"<path> line <n>: <what is wrong>; <what to do>."`` (no line when none can be found).
    """
    suffix = path.suffix.lower()
    raw = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, OSError) and not _arrow_error(error):
        reason = _OS_REASONS.get(error.errno or 0, raw)
        return f"{path}: cannot be read ({reason}); check the path and its permissions."
    if suffix in (".parquet", ".arrow"):
        kind = "Parquet" if suffix == ".parquet" else "Arrow"
        return (
            f"{path}: not a readable {kind} file ({raw}); write it again (e.g. pandas' to_{kind.lower()}) "
            "or pass the .jsonl / .csv it came from."
        )
    try:
        bad = _first_bad_utf8(path)
    except OSError:
        bad = None
    if bad is not None:
        line, column, byte = bad
        return f"{path} line {line}: byte 0x{byte:02x} at column {column} is not UTF-8 text; {_TEXT_ADVICE}."
    if suffix in (".jsonl", ".json"):
        located = None
        if suffix == ".jsonl" or not _json_document_ok(path):
            with contextlib.suppress(OSError):
                located = _first_bad_json_line(path)
        if located is not None:
            line, reason = located
            return (
                f"{path} line {line} is not a JSON record: {reason}; each line must be one JSON object such "
                'as {"text": "..."}: fix that line and run again.'
            )
        return f"{path}: cannot be read as JSON lines ({raw}); pass one JSON object per line."
    if suffix == ".csv":
        if "No columns to parse" in raw:
            return f"{path} is empty; pass a CSV file with a header line and one example per line."
        at, reason = _csv_reason(raw)
        where = f" line {at}" if at is not None else ""
        return f"{path}{where} is not valid CSV: {reason}; fix the file (quote fields that hold commas) and run again."
    return f"{path}: cannot be read ({raw}); check the file."


def _arrow_error(error: BaseException) -> bool:
    r"""pyarrow's IO errors are OSErrors too (e.g. a Parquet file without its footer)."""
    return type(error).__module__.startswith("pyarrow")
