"""Two "nodes" on this host (two torchrun launches, --nnodes 2, gloo) write one folder equal to one process's;
a node SIGKILLed mid-run and the job relaunched loses and duplicates nothing."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from tests._support import saved as S

ROOT = pathlib.Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.multinode]
START_TIMEOUT = 300  # two interpreters importing torch + transformers on a busy 2-core machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK", "NODE_RANK"):
        env.pop(key, None)
    return env


def _command(args, node=None, port=None, progress=False):
    launcher = []
    if node is not None:
        launcher = [
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "2",
            "--node-rank",
            str(node),
            "--nproc-per-node",
            "1",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(port),
        ]
    quiet = [] if progress else ["--no-progress"]
    return [
        sys.executable,
        *launcher,
        "-m",
        "captum_normxlogit.cli",
        "attribute-dataset",
        *args,
        *quiet,
        "--device",
        "cpu",
    ]


def _start_nodes(args, tmp_path, tag, progress=False):
    """Both nodes' launchers."""
    port, nodes = _free_port(), []
    for node in (0, 1):
        log = open(tmp_path / f"{tag}-node{node}.log", "w")
        nodes.append(
            subprocess.Popen(
                _command(args, node, port, progress), env=_env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        )
    return nodes


def _node_pids(proc):
    """The launcher and everything under it (torchrun starts each worker in a session of its own)."""
    children: dict[int, list[int]] = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # "pid (name) state ppid ..."
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [proc.pid]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _signal_node(proc, signum):
    if proc.poll() is not None:
        return
    for pid in _node_pids(proc):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _kill_node(proc):
    _signal_node(proc, signal.SIGKILL)  # the launcher and its worker: the whole "machine" goes
    proc.wait(timeout=60)


def _wait(nodes, timeout):
    deadline = time.monotonic() + timeout
    try:
        return [proc.wait(timeout=max(deadline - time.monotonic(), 1)) for proc in nodes]
    finally:
        for proc in nodes:  # a test that fails (or times out) leaves no process behind
            if proc.poll() is None:
                _kill_node(proc)


def _log(tmp_path, tag):
    return "\n".join((tmp_path / f"{tag}-node{n}.log").read_text()[-2500:] for n in (0, 1))


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A tiny classifier in a folder (with its tokenizer), 96 rows, and the one-process folder they give."""
    pytest.importorskip("accelerate")
    root = tmp_path_factory.mktemp("multinode")
    model_dir = S.save(root / "cls", S.classifier(), S.wordpiece())
    extras = ("", "good", "not bad", "very", "thin", "a", "the story", "witty", "dull", "the plot", "bad")
    rows = [
        {"text": f"{s} {e}".strip(), "y": i % 3} for i, (s, e) in enumerate((s, e) for e in extras for s in S.SENTENCES)
    ]
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = [str(data), "--model", model_dir, "--label-column", "y", "--shard-size", "4", "--layers", "0,2"]
    one = subprocess.run(
        _command([*args, "--output", str(root / "one")]),
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    return {"args": args, "rows": len(rows), "one": pd.read_parquet(root / "one"), "root": root}


def _assert_same_rows(folder, job):
    a, b = job["one"], pd.read_parquet(folder)
    assert b["index"].tolist() == a["index"].tolist() == list(range(job["rows"]))  # none lost, none twice
    assert b.text.tolist() == a.text.tolist() and b.target.tolist() == a.target.tolist()
    for column in ("scores", "layer_scores"):
        for x, y in zip(a[column], b[column]):
            np.testing.assert_allclose(np.stack(x), np.stack(y), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.prob, b.prob, rtol=1e-5, atol=1e-6)
    manifest = json.loads((folder / ".manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["run"]["world_size"] == 2
    assert [s["file"] for s in manifest["shards"]] == sorted(p.name for p in folder.glob("part-*"))
    return manifest


def test_two_nodes_write_the_one_process_folder(job, tmp_path):
    out = tmp_path / "two"
    nodes = _start_nodes([*job["args"], "--output", str(out)], tmp_path, "run", progress=True)
    assert _wait(nodes, START_TIMEOUT) == [0, 0], _log(tmp_path, "run")
    manifest = _assert_same_rows(out, job)
    # rank 0 reports once, for every rank's rows: both nodes wrote shards (shard k belongs to rank k % 2)
    assert manifest["run"]["written"] == {"rows": job["rows"], "shards": len(manifest["shards"])}
    assert manifest["run"]["kept"] == {"rows": 0, "shards": 0}
    logs = [(tmp_path / f"run-node{n}.log").read_text() for n in (0, 1)]
    assert sum(log.count(f"wrote {job['rows']} rows") for log in logs) == 1
    # only rank 0 draws the bar, and its total and count are every rank's rows, not its own half
    n = job["rows"]
    assert f"{n}/{n} [" in logs[0] and f"/{n} [" not in logs[1] and "2 ranks" in logs[0]
    assert f"{n // 2}/{n // 2} [" not in logs[0]


def test_a_node_killed_mid_run_then_the_job_relaunched_loses_and_duplicates_nothing(job, tmp_path):
    out = tmp_path / "killed"
    n_shards = -(-job["rows"] // 4)
    nodes = _start_nodes([*job["args"], "--output", str(out)], tmp_path, "first")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (out / "part-000001.parquet").exists():  # node 1's first shard
            assert time.monotonic() < deadline, _log(tmp_path, "first")
            assert nodes[1].poll() is None, "node 1 ended before its first shard:\n" + _log(tmp_path, "first")
            time.sleep(0.002)
        for proc in nodes:  # freeze the job where it is, so the kill lands mid-run however fast it goes
            _signal_node(proc, signal.SIGSTOP)
        written_then = sorted(p.name for p in out.glob("part-*"))
        status_then = json.loads((out / ".manifest.json").read_text())["status"]
        _kill_node(nodes[1])
        _signal_node(nodes[0], signal.SIGCONT)
        try:  # the survivor's collective fails once its peer is gone; a scheduler would stop it anyway
            nodes[0].wait(timeout=30)
        except subprocess.TimeoutExpired:
            _kill_node(nodes[0])
    finally:
        _wait(nodes, 60)
    assert nodes[1].returncode == -signal.SIGKILL and nodes[0].returncode != 0
    assert status_then == "running" and 0 < len(written_then) < n_shards, written_then  # killed mid-run
    assert json.loads((out / ".manifest.json").read_text())["status"] == "running"
    survivor = (tmp_path / "first-node0.log").read_text()  # it stopped by itself, and said why in one sentence
    assert "error: rank 0 lost contact with another rank of the run (" in survivor, survivor[-3000:]
    assert "relaunch the whole job with the same command: finished shards are kept." in survivor

    nodes = _start_nodes([*job["args"], "--output", str(out)], tmp_path, "again")
    assert _wait(nodes, START_TIMEOUT) == [0, 0], _log(tmp_path, "again")
    manifest = _assert_same_rows(out, job)
    kept, written = manifest["run"]["kept"], manifest["run"]["written"]
    assert kept["shards"] >= 1 and kept["rows"] + written["rows"] == job["rows"]
    assert kept["shards"] + written["shards"] == n_shards
    line = (tmp_path / "again-node0.log").read_text().strip().splitlines()[-1]
    assert line.startswith(f"kept {kept['rows']} rows in {kept['shards']} shard"), line
    assert f"wrote {written['rows']} rows in {written['shards']} shard" in line
