"""Every hostile request to every command ends in one line on stderr naming the path, with exit code
2 (bad request) or 1 (failed run), no traceback, and nothing half-written: the table of cases is
`tests/_commands/error_cases.py` (also shown in docs/reliability.md)."""

import ctypes
import hashlib
import json
import os
import subprocess
import sys

import pytest

from captum_normxlogit.cli import main
from tests._commands import error_cases as E
from tests._support import saved as S

_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _PR_CAPBSET_DROP = 1, 2, 24


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    from captum_normxlogit.dataset import attribute_dataset

    root = tmp_path_factory.mktemp("errors-shared")
    os.chmod(root, 0o755)
    classifier = S.save(root / "cls", S.classifier(), S.wordpiece())
    attribution = root / "attributions"
    attribute_dataset(S.classifier(), S.wordpiece(), S.SENTENCES * 2, attribution, progress=False)
    return classifier, attribution


def _world(shared, root):
    root.mkdir(parents=True, exist_ok=True)
    return E.World(root, shared[0], shared[1])


def _snapshot(root):
    """Every entry under root: kind and content hash (a FIFO is never opened)."""
    entries = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            entries[rel] = "special"
        elif path.is_dir():
            entries[rel] = "dir"
        else:
            entries[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


def _drop_root_override():
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot drop a capability")


def _child(cases, unreadable):
    """Runs the cases (dicts, see cli_child.py) in one fresh process; returns their results in order."""
    env = {**os.environ, "PYTHONPATH": str(E.ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "tests._commands.cli_child"],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(E.ROOT),
        env=env,
        preexec_fn=_drop_root_override if unreadable else None,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr == "", run.stderr[-3000:]  # nothing leaked past the commands' own stderr
    return json.loads(run.stdout)


def _can_drop_root_override():
    if os.geteuid() != 0:
        return True  # permissions already count for this user
    try:
        subprocess.run([sys.executable, "-c", ""], preexec_fn=_drop_root_override, check=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


@pytest.fixture(scope="module")
def in_children(shared, tmp_path_factory):
    """The cases that need a fresh process, all run in one (without root's permission override when
    that can be dropped; the "unreadable" cases are skipped otherwise)."""
    drop = _can_drop_root_override()
    chosen = [case for case in E.CASES if case.limit and (drop or case.limit != "unreadable")]
    built = []
    for case in chosen:
        assert case.limit is not None  # chosen above
        root = tmp_path_factory.mktemp(f"errors-{case.id}")
        os.chmod(root, 0o755)
        world = _world(shared, root / "w")
        argv, path = case.build(world)
        before = _snapshot(world.root)
        fsize = int(case.limit.split("=")[1]) if case.limit.startswith("fsize=") else None
        built.append((case, world, path, before, {"argv": argv, "fsize": fsize}))
    got = _child([spec for *_, spec in built], drop) if built else []
    results: dict[str, object] = {case.id: None for case in E.CASES if case.limit}
    for (case, world, path, before, _), result in zip(built, got):
        results[case.id] = (result["code"], result["out"], result["err"], path, before, _snapshot(world.root))
    return results


def _run_here(argv, capfd):
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code  # type: ignore[assignment]  # main exits with an int code
    out, err = capfd.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", E.CASES, ids=[case.id for case in E.CASES])
def test_a_hostile_request_ends_in_one_line_and_leaves_nothing(case, shared, in_children, tmp_path, capfd):
    if case.limit is None:
        world = _world(shared, tmp_path / "w")
        argv, path = case.build(world)
        before = _snapshot(world.root)
        code, out, err = _run_here(argv, capfd)
        after = _snapshot(world.root)
    else:
        if in_children[case.id] is None:
            pytest.skip("cannot drop root's override of file permissions here")
        code, out, err, path, before, after = in_children[case.id]
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"normxlogit {case.command}: error: "), lines[0]
    assert case.phrase in lines[0] and path in lines[0], lines[0]
    assert code == case.code, (code, err)
    # nothing half-written: no new entry (no output, no temporary, no empty folder), user files identical
    assert after == before


def test_the_docs_show_the_table_of_cases():
    assert E.documented() == E.markdown(), "run `python -m tests._commands.error_cases` to update docs/reliability.md"


def test_a_mid_run_failure_keeps_the_finished_shards_to_resume(shared, tmp_path):
    """A full disk after some shards: they stay (the folder resumes), the failed one leaves no file."""
    world = _world(shared, tmp_path / "w")
    data = world.file("d.jsonl", "".join(json.dumps({"text": s}) + "\n" for s in S.SENTENCES).encode())
    out = tmp_path / "w" / "out"
    argv = [
        "attribute-dataset",
        data,
        "--model",
        world.classifier,
        "--output",
        str(out),
        "--no-progress",
        "--shard-size",
        "4",
    ]
    redo = str(out / "part-000001.parquet")
    first, failed, resumed = _child(
        [
            {"argv": argv, "list": str(out)},
            {"argv": argv, "remove": [redo], "fsize": 3000, "list": str(out)},  # the redone shard (~6 kB) cannot fit
            {"argv": argv, "list": str(out)},
        ],
        False,
    )
    assert first["code"] == 0, first["err"]
    assert first["listed"] == [".manifest.json", "part-000000.parquet", "part-000001.parquet", "part-000002.parquet"]
    assert failed["code"] == 1 and len(failed["err"].strip().splitlines()) == 1, failed["err"]
    assert f"cannot write {redo}" in failed["err"] and "free some space" in failed["err"]
    assert failed["listed"] == [name for name in first["listed"] if name != "part-000001.parquet"]
    assert resumed["code"] == 0 and resumed["listed"] == first["listed"], resumed["err"]
