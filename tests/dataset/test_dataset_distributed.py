"""Two processes under torchrun (CPU, gloo) write the same folder as one process: same rows, order and scores."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests._support import saved as S

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _cli(*args, launcher=()):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    command = [sys.executable, *launcher, "-m", "captum_normxlogit.cli", "attribute-dataset", *args, "--no-progress"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=420, cwd=ROOT)


def test_two_processes_match_one(tmp_path):
    pytest.importorskip("accelerate")
    model_dir = S.save(tmp_path / "cls", S.classifier(), S.wordpiece())
    data = tmp_path / "data.jsonl"
    rows = [
        {"text": f"{s} {extra}".strip(), "y": i % 3}
        for i, (s, extra) in enumerate((s, e) for e in ("", "good", "not bad") for s in S.SENTENCES)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = [str(data), "--model", model_dir, "--label-column", "y", "--shard-size", "5", "--layers", "0,2"]
    one = _cli(*common, "--output", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = _cli(*common, "--output", str(tmp_path / "two"), launcher=torchrun)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("wrote 36 rows") == 1  # only rank 0 reports

    a, b = pd.read_parquet(tmp_path / "one"), pd.read_parquet(tmp_path / "two")
    assert a["index"].tolist() == b["index"].tolist() == list(range(len(rows)))
    assert a.target.tolist() == b.target.tolist() and a.label.tolist() == b.label.tolist()
    for column in ("scores", "layer_scores"):
        for x, y in zip(a[column], b[column]):
            np.testing.assert_allclose(np.stack(x), np.stack(y), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.prob, b.prob, rtol=1e-5, atol=1e-6)
    manifest = json.loads((tmp_path / "two" / ".manifest.json").read_text())
    assert manifest["run"]["world_size"] == 2 and manifest["status"] == "complete"
    assert [s["file"] for s in manifest["shards"]] == sorted(p.name for p in (tmp_path / "two").glob("part-*"))
    assert manifest["fingerprint"] == json.loads((tmp_path / "one" / ".manifest.json").read_text())["fingerprint"]
    # a rerun with two processes resumes the one-process folder (same fingerprint): nothing recomputed
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "one").glob("part-*")}
    again = _cli(*common, "--output", str(tmp_path / "one"), launcher=torchrun)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "one").glob("part-*")} == before
