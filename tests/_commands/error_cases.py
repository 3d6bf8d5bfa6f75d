"""The table of hostile requests every `normxlogit` command must answer with one line on stderr.

`tests/_commands/test_errors.py` runs every row; `docs/reliability.md` shows the same table
between the `error-table` markers (checked by that test; rewrite it with
`python -m tests._commands.error_cases`).

A row: the command, the case in words, how to build it (`build(world) -> (argv, path)`: the
arguments after `normxlogit` and the path the message must name), the exit code (2: a bad
request, refused before any work; 1: a run that failed, e.g. a full disk) and a phrase the one
line must contain. `limit` runs the row in a fresh process: `fsize=N` (a full disk: writes past N
bytes fail) or `unreadable` (root's override of file permissions dropped, so `chmod` counts).
"""

import json
import os
import pathlib
import re
import shutil
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- error-table: begin (generated from tests/_commands/error_cases.py) -->", "<!-- error-table: end -->"


@dataclass
class World:
    """One case's playground: `root` (snapshotted before and after), and shared read-only inputs."""

    root: pathlib.Path
    classifier: str  # a tiny saved classifier with its tokenizer
    attribution: pathlib.Path  # a finished attribute-dataset folder

    def file(self, name: str, data: bytes) -> str:
        path = self.root / name
        path.write_bytes(data)
        return str(path)

    def fifo(self, name: str) -> str:
        path = self.root / name
        os.mkfifo(path)
        return str(path)

    def folder(self, name: str) -> str:
        path = self.root / name
        path.mkdir()
        return str(path)

    def copy_attribution(self) -> pathlib.Path:
        copy = self.root / "attributions"
        shutil.copytree(self.attribution, copy)
        return copy

    def model_copy(self) -> pathlib.Path:
        copy = self.root / "model"
        shutil.copytree(self.classifier, copy)
        return copy

    def dataset(self, data: str, *extra: str) -> List[str]:
        return [
            "attribute-dataset",
            data,
            "--model",
            self.classifier,
            "--output",
            str(self.root / "out"),
            "--no-progress",
            *extra,
        ]

    def good_data(self) -> str:
        return self.file("data.jsonl", b'{"text": "a gorgeous , witty movie ."}\n{"text": "dull film !"}\n')


@dataclass(frozen=True)
class Case:
    id: str
    command: str
    what: str
    build: Callable[[World], Tuple[List[str], str]]
    code: int
    phrase: str
    limit: Optional[str] = None  # None: in this process; "fsize=N"; "unreadable"


def _data(name: str, data: bytes, *extra: str):
    def build(w: World):
        path = w.file(name, data)
        return w.dataset(path, *extra), path

    return build


def _special_data(kind: str):
    def build(w: World):
        path = {
            "folder": lambda: w.folder("data.jsonl"),
            "fifo": lambda: w.fifo("data.jsonl"),
            "missing": lambda: str(w.root / "data.jsonl"),
        }[kind]()
        return w.dataset(path), path

    return build


def _unreadable_data(w: World):
    path = w.good_data()
    os.chmod(path, 0)
    return w.dataset(path), path


def _output(where: str):
    def build(w: World):
        data = w.good_data()
        out = {
            "file": lambda: w.file("out", b"mine"),
            "under-file": lambda: os.path.join(w.file("f", b"x"), "out"),
            "proc": lambda: "/proc/normxlogit-out",
            "read-only": lambda: os.path.join(_read_only(w), "out"),
            "full": lambda: str(w.root / "out"),
        }[where]()
        argv = w.dataset(data)
        argv[argv.index("--output") + 1] = out
        return argv, out

    return build


def _read_only(w: World) -> str:
    folder = w.root / "locked"
    folder.mkdir()
    os.chmod(folder, 0o555)
    return str(folder)


def _summarize_manifest(content: bytes):
    def build(w: World):
        folder = w.copy_attribution()
        (folder / ".manifest.json").write_bytes(content)
        return ["summarize", str(folder)], str(folder)

    return build


def _target(w: World, where: str, suffix: str) -> str:
    return {
        "under-file": lambda: os.path.join(w.file("f", b"x"), "page" + suffix),
        "proc": lambda: "/proc/normxlogit" + suffix,
        "fifo": lambda: w.fifo("page" + suffix),
        "read-only": lambda: os.path.join(_read_only(w), "page" + suffix),
        "full": lambda: str(w.root / ("page" + suffix)),
    }[where]()


def _summarize_output(option: str, where: str):
    def build(w: World):
        path = _target(w, where, "." + option)
        return ["summarize", str(w.attribution), "--min-count", "1", f"--{option}", path], path

    return build


def _explain_output(option: str, where: str):
    def build(w: World):
        path = _target(w, where, "." + option)
        return [
            "explain",
            "a gorgeous movie .",
            "--model",
            w.classifier,
            "--methods",
            "normxlogit",
            f"--{option}",
            path,
            "--colour",
            "never",
        ], path

    return build


def _evaluate_output(where: str):
    def build(w: World):
        path = {
            "file": lambda: w.file("results", b"mine"),
            "proc": lambda: "/proc/normxlogit-results",
            "under-file": lambda: os.path.join(w.file("f", b"x"), "results"),
        }[where]()
        return ["evaluate", "--output", path, "--no-progress"], path

    return build


def _demo_output(where: str):
    def build(w: World):
        path = _target(w, where, ".html")
        return ["demo", "--html", path, "--no-llm"], path

    return build


def _model(kind: str):
    def build(w: World):
        if kind == "missing":
            path = w.root / "none"
        elif kind == "file":
            path = pathlib.Path(w.file("model", b"x"))
        else:
            path = w.model_copy()
            config = path / "config.json"
            if kind == "no-config":
                config.unlink()
            elif kind == "config-not-json":
                config.write_bytes(b"{not json")
            elif kind == "config-not-utf8":
                config.write_bytes(b'{"model_type": "bert\xe9"}')
            elif kind == "weights":
                weights = path / "model.safetensors"
                weights.write_bytes(weights.read_bytes()[:100])
        return ["check-model", str(path), "--repeats", "1"], str(path)

    return build


_MISSING_QUOTE = b'{"text": "a movie ."}\n{"text": "a gorgeous movie}\n'
CASES = [
    # attribute-dataset: the data file
    Case("dataset-empty-jsonl", "attribute-dataset", "empty .jsonl", _data("d.jsonl", b""), 2, "has no rows"),
    Case(
        "dataset-blank-jsonl",
        "attribute-dataset",
        ".jsonl of blank lines only",
        _data("d.jsonl", b"\n \n"),
        2,
        "has no rows",
    ),
    Case("dataset-empty-csv", "attribute-dataset", "empty .csv", _data("d.csv", b""), 2, "is empty"),
    Case(
        "dataset-header-csv",
        "attribute-dataset",
        "header-only .csv",
        _data("d.csv", b"text,label\n"),
        2,
        "has a header line but no rows",
    ),
    Case(
        "dataset-empty-parquet",
        "attribute-dataset",
        ".parquet with columns and no rows",
        lambda w: _empty_parquet(w),
        2,
        "has columns but no rows",
    ),
    Case(
        "dataset-zero-byte-parquet",
        "attribute-dataset",
        "zero-byte .parquet",
        _data("d.parquet", b""),
        2,
        "not a readable Parquet file",
    ),
    Case(
        "dataset-txt",
        "attribute-dataset",
        "a .txt file",
        _data("d.txt", b"a movie\n"),
        2,
        "unsupported file type '.txt'",
    ),
    Case(
        "dataset-missing-quote",
        "attribute-dataset",
        ".jsonl line with a missing quote",
        _data("d.jsonl", _MISSING_QUOTE),
        2,
        "line 2 is not a JSON record: a string is not closed",
    ),
    Case(
        "dataset-not-object",
        "attribute-dataset",
        ".jsonl line that is not an object",
        _data("d.jsonl", b'{"text": "a movie"}\n["a movie"]\n'),
        2,
        "line 2 is not a JSON record: it is a JSON list",
    ),
    Case(
        "dataset-latin1-jsonl",
        "attribute-dataset",
        "non-UTF-8 .jsonl",
        _data("d.jsonl", b'{"text": "a movie ."}\n{"text": "\xe9t\xe9"}\n'),
        2,
        "line 2: byte 0xe9 at column 11 is not UTF-8",
    ),
    Case(
        "dataset-latin1-csv",
        "attribute-dataset",
        "non-UTF-8 .csv",
        _data("d.csv", b"text\na movie\n\xe9t\xe9\n"),
        2,
        "line 3: byte 0xe9 at column 1 is not UTF-8",
    ),
    Case(
        "dataset-csv-quote",
        "attribute-dataset",
        ".csv with an unclosed quote",
        _data("d.csv", b'text\na movie\n"a gorgeous, movie\n'),
        2,
        "line 3 is not valid CSV: a quoted field is never closed",
    ),
    Case(
        "dataset-only-bad-rows",
        "attribute-dataset",
        "only bad rows (no text)",
        _data("d.jsonl", b'{"text": null}\n{"text": null}\n'),
        2,
        "row 0: text is missing (None); fix that row, or pass --on-error skip",
    ),
    Case(
        "dataset-no-column",
        "attribute-dataset",
        "the text column is missing",
        _data("d.jsonl", b'{"sentence": "a movie"}\n'),
        2,
        "has no column 'text'",
    ),
    Case(
        "dataset-folder", "attribute-dataset", "DATA is a folder", _special_data("folder"), 2, "is a folder, not a file"
    ),
    Case("dataset-fifo", "attribute-dataset", "DATA is a FIFO", _special_data("fifo"), 2, "is not a regular file"),
    Case("dataset-missing", "attribute-dataset", "DATA does not exist", _special_data("missing"), 2, "no such file"),
    Case(
        "dataset-unreadable",
        "attribute-dataset",
        "DATA unreadable (chmod 000)",
        _unreadable_data,
        2,
        "cannot be read (permission denied)",
        "unreadable",
    ),
    # attribute-dataset: the output folder
    Case(
        "dataset-output-file", "attribute-dataset", "--output is a file", _output("file"), 2, "is a file; pass a folder"
    ),
    Case(
        "dataset-output-under-file",
        "attribute-dataset",
        "--output inside a file",
        _output("under-file"),
        2,
        "is a file, not a folder",
    ),
    Case("dataset-output-proc", "attribute-dataset", "--output in /proc", _output("proc"), 2, "cannot be created"),
    Case(
        "dataset-output-read-only",
        "attribute-dataset",
        "--output in a read-only folder",
        _output("read-only"),
        2,
        "permission denied",
        "unreadable",
    ),
    Case(
        "dataset-output-full",
        "attribute-dataset",
        "full disk while writing a shard",
        _output("full"),
        1,
        "free some space",
        "fsize=3000",
    ),
    # summarize
    Case(
        "summarize-manifest-not-json",
        "summarize",
        "damaged manifest (not JSON)",
        _summarize_manifest(b'{"format": '),
        2,
        "the rows in the shards beside it are intact: read them with pandas.read_parquet(",
    ),
    Case(
        "summarize-manifest-list",
        "summarize",
        "manifest is a JSON list",
        _summarize_manifest(b"[1, 2]"),
        2,
        "was not written by this version of attribute_dataset",
    ),
    Case(
        "summarize-manifest-latin1",
        "summarize",
        "manifest not UTF-8",
        _summarize_manifest(b'{"f": "\xe9"}'),
        2,
        "is damaged (not UTF-8)",
    ),
    Case(
        "summarize-not-folder",
        "summarize",
        "DIR is a file",
        lambda w: (["summarize", w.file("f", b"x")], str(w.root / "f")),
        2,
        "is not a folder",
    ),
    Case(
        "summarize-csv-under-file",
        "summarize",
        "--csv inside a file",
        _summarize_output("csv", "under-file"),
        2,
        "is a file, not a folder",
    ),
    Case("summarize-html-proc", "summarize", "--html in /proc", _summarize_output("html", "proc"), 2, "cannot write"),
    Case(
        "summarize-png-fifo",
        "summarize",
        "--png is a FIFO",
        _summarize_output("png", "fifo"),
        2,
        "it is a FIFO, device or socket",
    ),
    Case(
        "summarize-csv-read-only",
        "summarize",
        "--csv in a read-only folder",
        _summarize_output("csv", "read-only"),
        2,
        "permission denied",
        "unreadable",
    ),
    Case(
        "summarize-csv-full",
        "summarize",
        "--csv on a full disk",
        _summarize_output("csv", "full"),
        1,
        "free some space",
        "fsize=200",
    ),
    Case(
        "summarize-png-full",
        "summarize",
        "--png on a full disk",
        _summarize_output("png", "full"),
        1,
        "free some space",
        "fsize=2000",
    ),
    Case(
        "summarize-html-full",
        "summarize",
        "--html on a full disk",
        _summarize_output("html", "full"),
        1,
        "free some space",
        "fsize=2000",
    ),
    # explain
    Case(
        "explain-html-under-file",
        "explain",
        "--html inside a file",
        _explain_output("html", "under-file"),
        2,
        "is a file, not a folder",
    ),
    Case("explain-png-proc", "explain", "--png in /proc", _explain_output("png", "proc"), 2, "cannot write"),
    Case(
        "explain-html-fifo",
        "explain",
        "--html is a FIFO",
        _explain_output("html", "fifo"),
        2,
        "it is a FIFO, device or socket",
    ),
    Case(
        "explain-html-full",
        "explain",
        "--html on a full disk",
        _explain_output("html", "full"),
        1,
        "free some space",
        "fsize=2000",
    ),
    Case(
        "explain-png-full",
        "explain",
        "--png on a full disk",
        _explain_output("png", "full"),
        1,
        "free some space",
        "fsize=2000",
    ),
    # evaluate and demo: the outputs are checked before any model is loaded
    Case(
        "evaluate-output-file",
        "evaluate",
        "--output is a file",
        _evaluate_output("file"),
        2,
        "is a file; pass a folder",
    ),
    Case("evaluate-output-proc", "evaluate", "--output in /proc", _evaluate_output("proc"), 2, "cannot write"),
    Case(
        "evaluate-output-under-file",
        "evaluate",
        "--output inside a file",
        _evaluate_output("under-file"),
        2,
        "is a file, not a folder",
    ),
    Case(
        "demo-html-under-file", "demo", "--html inside a file", _demo_output("under-file"), 2, "is a file, not a folder"
    ),
    Case("demo-html-fifo", "demo", "--html is a FIFO", _demo_output("fifo"), 2, "it is a FIFO, device or socket"),
    Case("demo-html-proc", "demo", "--html in /proc", _demo_output("proc"), 2, "cannot write"),
    # check-model
    Case("check-model-missing", "check-model", "DIR does not exist", _model("missing"), 2, "no such directory"),
    Case("check-model-file", "check-model", "DIR is a file", _model("file"), 2, "is a file, not a folder"),
    Case("check-model-no-config", "check-model", "no config.json", _model("no-config"), 2, "no config.json there"),
    Case(
        "check-model-config-not-json",
        "check-model",
        "config.json not JSON",
        _model("config-not-json"),
        2,
        "config.json cannot be read",
    ),
    Case(
        "check-model-config-latin1",
        "check-model",
        "config.json not UTF-8",
        _model("config-not-utf8"),
        2,
        "config.json cannot be read",
    ),
    Case(
        "check-model-weights", "check-model", "truncated weights", _model("weights"), 2, "the weights cannot be loaded"
    ),
]


def _empty_parquet(w: World):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = w.root / "d.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), path)
    return w.dataset(str(path)), str(path)


def markdown() -> str:
    """The docs table: one row per case."""
    lines = ["| Command | Case | Exit | The one line says (excerpt) |", "|---|---|---|---|"]
    for case in CASES:
        phrase = case.phrase.replace("|", "\\|")
        lines.append(f"| `{case.command}` | {case.what} | {case.code} | {phrase} |")
    return "\n".join(lines)


def documented() -> str:
    """The table as docs/reliability.md holds it now."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    return match.group(1) if match else ""


def write_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{markdown()}\n{END}"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        raise SystemExit(f"{DOC} has no {BEGIN!r} marker; add one where the table goes")
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_doc()
    print(json.dumps({"rows": len(CASES), "doc": str(DOC)}))
