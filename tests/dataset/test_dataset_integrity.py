"""Nothing lost, nothing mixed: --limit, full fingerprints, the folder lock, shard checksums, manifest-less folders."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from captum_normxlogit.cli import main
from captum_normxlogit.dataset import (
    MANIFEST_NAME,
    DatasetSettings,
    FolderBusyError,
    ResumeError,
    attribute_dataset,
    open_attribution,
)
from tests._support import saved as S

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEXTS = S.DATASET_TEXTS


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return S.save(tmp_path_factory.mktemp("models") / "cls", S.classifier(), S.wordpiece())


_load = S.load_classifier
_shards = S.shard_names


def _mtimes(out):
    return {p.name: p.stat().st_mtime_ns for p in out.iterdir()}


def _run(saved, data, out, **kw):
    model, tok = _load(saved)
    kw.setdefault("shard_size", 6)
    return attribute_dataset(model, tok, data, out, progress=False, **kw)


# -- --limit --------------------------------------------------------------------------------------


def test_smaller_limit_keeps_every_finished_shard(tmp_path, saved):
    out = tmp_path / "out"
    full = _run(saved, TEXTS, out).to_pandas()
    assert len(_shards(out)) == 6
    before = _mtimes(out)
    for limit in (12, 9, 0):  # 9: shard 1 on disk holds more rows than asked and is kept whole
        res = _run(saved, TEXTS, out, limit=limit)
        assert len(_shards(out)) == 6
        assert res.counts()["rows"] == 36 and res.counts()["shards"] == 6  # the folder reports what it holds
        assert {k: v for k, v in _mtimes(out).items() if k.startswith("part-")} == {
            k: v for k, v in before.items() if k.startswith("part-")
        }  # nothing recomputed or deleted
        assert res.check() == []
    again = res.to_pandas()
    assert again["index"].tolist() == full["index"].tolist()


def test_no_resume_deletes_only_what_the_run_can_prove_it_wrote(tmp_path, saved):
    out = tmp_path / "out"
    _run(saved, TEXTS, out)
    mine = out / "part-000009.parquet"  # the user's own file under a shard name
    pd.DataFrame({"a": [1, 2]}).to_parquet(mine)
    before = _mtimes(out)
    with pytest.raises(ResumeError, match=r"part-000009\.parquet, which attribute_dataset cannot prove it wrote"):
        _run(saved, TEXTS, out, resume=False, target="POSITIVE")
    assert _mtimes(out) == before and pd.read_parquet(mine)["a"].tolist() == [1, 2]


def test_resume_never_replaces_a_file_it_cannot_prove_it_wrote(tmp_path, saved):
    out = tmp_path / "out"
    _run(saved, TEXTS, out, limit=12)  # shards 0 and 1
    mine = out / "part-000003.parquet"  # the user's file, where the full run's shard 3 would go
    pd.DataFrame({"a": [1, 2]}).to_parquet(mine)
    with pytest.raises(ResumeError, match=r"part-000003\.parquet is unreadable and no \.manifest\.json lists it"):
        _run(saved, TEXTS, out)
    assert pd.read_parquet(mine)["a"].tolist() == [1, 2]


# -- fingerprints -------------------------------------------------------------------------------


def test_a_change_anywhere_in_the_weights_refuses_to_resume(tmp_path, saved):
    out = tmp_path / "out"
    _run(saved, TEXTS, out)
    model, tok = _load(saved)
    # the old fingerprint read every (numel // 257)-th value: change only the values between those
    weight = model.bert.embeddings.word_embeddings.weight
    step = weight.numel() // 257
    assert step >= 2
    with torch.no_grad():
        weight.view(-1)[torch.arange(weight.numel()) % step != 0] += 0.05
    before = _mtimes(out)
    with pytest.raises(ResumeError, match="weights_digest"):
        attribute_dataset(model, tok, TEXTS, out, shard_size=6, progress=False)
    assert _mtimes(out) == before


def test_weights_digest_sees_every_tensor_and_ignores_copies(saved):
    from captum_normxlogit.dataset._manifest import weights_digest

    model, _ = _load(saved)
    base = weights_digest(model)
    assert weights_digest(_load(saved)[0]) == base  # loaded again: the same
    state = model.state_dict()
    gen = torch.Generator().manual_seed(0)
    for name in sorted(state):  # one value of each tensor, anywhere in it
        tensor = state[name]
        if tensor.numel() == 0 or not tensor.is_floating_point():
            continue
        pos = int(torch.randint(tensor.numel(), (1,), generator=gen))
        flat = tensor.view(-1)
        old = flat[pos].clone()
        flat[pos] = old + 1e-3
        assert weights_digest(model) != base, name
        flat[pos] = old
    assert weights_digest(model) == base


@pytest.mark.parametrize("change", ["truncation_side", "padding_side", "lowercase", "normalizer"])
def test_a_changed_tokenizer_configuration_refuses_to_resume(tmp_path, saved, change):
    import tokenizers
    import transformers as T

    out = tmp_path / "out"
    _run(saved, TEXTS[:12], out)
    model, tok = _load(saved)
    if change == "truncation_side":
        tok.truncation_side = "left"
    elif change == "padding_side":
        tok.padding_side = "left"
    elif change == "lowercase":  # saved with do_lower_case=False: what a reload of such a folder gives
        tok = T.AutoTokenizer.from_pretrained(saved, do_lower_case=False)
    else:
        tok.backend_tokenizer.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=False, strip_accents=True)
    before = _mtimes(out)
    with pytest.raises(ResumeError, match="tokenizer.config_hash"):
        attribute_dataset(model, tok, TEXTS[:12], out, shard_size=6, progress=False)
    assert _mtimes(out) == before


def test_the_data_identity_is_fingerprinted(tmp_path, saved):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    out = tmp_path / "out"
    _run(saved, str(data), out)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["data"]["digest"].startswith("blake2b-256:") and manifest["data"]["bytes"] == data.stat().st_size
    copy = tmp_path / "elsewhere" / "copy.jsonl"  # the same content elsewhere is the same data: resumes
    copy.parent.mkdir()
    copy.write_bytes(data.read_bytes())
    before = _mtimes(out)
    _run(saved, str(copy), out, limit=12)
    assert {k: v for k, v in _mtimes(out).items() if k.startswith("part-")} == {
        k: v for k, v in before.items() if k.startswith("part-")
    }
    # edited in place, the first two shards' rows unchanged: a rerun of them must not claim the other rows
    lines = data.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[-1] = json.dumps({"text": "a different last row"}) + "\n"
    data.write_text("".join(lines), encoding="utf-8")
    before = _mtimes(out)
    with pytest.raises(ResumeError, match=r"data\.digest"):
        _run(saved, str(data), out, limit=12)
    assert _mtimes(out) == before


# -- the lock -----------------------------------------------------------------------------------

_HOLDER = textwrap.dedent("""
    import pathlib, sys, time
    import transformers as T
    from captum_normxlogit.dataset import attribute_dataset
    from captum_normxlogit.dataset._explainer import RowExplainer as Task
    folder, out, flag = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    model = T.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tok = T.AutoTokenizer.from_pretrained(folder)
    real = Task.run
    def run(self, batch):
        flag.write_text("running")
        time.sleep(600)  # hold the folder until killed
        return real(self, batch)
    Task.run = run
    attribute_dataset(model, tok, ["a good movie .", "dull !"], out, shard_size=1, progress=False)
""")


def test_a_second_run_is_refused_while_the_first_holds_the_folder_and_sigkill_leaves_no_stale_lock(
    tmp_path, saved, capsys
):
    out = tmp_path / "out"
    child = _start_holder(tmp_path, saved, out)
    try:
        before = _mtimes(out)
        for kw in ({}, {"resume": False}, {"resume": False, "target": "POSITIVE"}):
            with pytest.raises(
                FolderBusyError,
                match=r"is in use by another attribute_dataset run \(held by pid "
                rf"{child.pid} .*\); wait for it",
            ):
                _run(saved, ["other data entirely"] * 3, out, shard_size=1, **kw)
        assert _mtimes(out) == before  # refused: nothing touched
        data = tmp_path / "x.jsonl"
        data.write_text('{"text": "good"}\n', encoding="utf-8")
        capsys.readouterr()
        code = main(["attribute-dataset", str(data), "--model", saved, "--output", str(out), "--no-resume"])
        err = capsys.readouterr().err
        assert code == 2 and "is in use by another attribute_dataset run" in err and "Traceback" not in err
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    res = _run(saved, ["a good movie .", "dull !"], out, shard_size=1)  # no stale lock after SIGKILL
    assert res.complete and res.counts()["rows"] == 2
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [MANIFEST_NAME]  # lock removed


def _start_holder(tmp_path, saved, out):
    script, flag = tmp_path / "holder.py", tmp_path / "flag"
    script.write_text(_HOLDER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(script), saved, str(out), str(flag)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert child.stderr is not None  # stderr=PIPE
    deadline = time.monotonic() + 240
    while not flag.exists():
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the holder never started its first batch"
        time.sleep(0.2)
    return child


def test_every_rank_of_a_second_torchrun_job_is_refused_by_the_lock(tmp_path, saved):
    pytest.importorskip("accelerate")
    out = tmp_path / "out"
    child = _start_holder(tmp_path, saved, out)
    try:
        data = tmp_path / "x.jsonl"
        data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS[:4]), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            env.pop(key, None)
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "captum_normxlogit.cli",
            "attribute-dataset",
            str(data),
            "--model",
            saved,
            "--output",
            str(out),
            "--no-resume",
            "--no-progress",
        ]
        before = _mtimes(out)
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert proc.returncode != 0
        assert proc.stderr.count("is in use by another attribute_dataset run") == 2, proc.stderr[-3000:]
        assert _mtimes(out) == before
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        child.stderr.close()


def test_a_refused_run_leaves_no_folder_behind(tmp_path, saved):
    out = tmp_path / "new"
    with pytest.raises(ValueError, match="must be one of"):
        _run(saved, TEXTS, out, on_error="ignore")
    assert not out.exists()


# -- shard checksums ----------------------------------------------------------------------------


def _flip_a_byte_in_the_scores(path):
    meta = pq.read_metadata(path)
    col = [
        meta.row_group(0).column(i)
        for i in range(meta.num_columns)
        if meta.row_group(0).column(i).path_in_schema.startswith("scores")
    ][0]
    start = col.dictionary_page_offset or col.data_page_offset
    blob = bytearray(path.read_bytes())
    blob[start + col.total_compressed_size - 3] ^= 0x01  # in the last values of the column's page
    path.write_bytes(bytes(blob))


def test_a_damaged_shard_is_redone_on_resume_and_said_so(tmp_path, saved):
    out = tmp_path / "out"
    first = _run(saved, TEXTS, out).to_pandas()
    victim = out / "part-000002.parquet"
    _flip_a_byte_in_the_scores(victim)
    assert pq.read_table(victim, columns=["index", "error", "input_ids"]).num_rows == 6  # still reads
    kept = (out / "part-000001.parquet").stat().st_mtime_ns
    with pytest.warns(UserWarning, match=r"part-000002\.parquet is damaged \(its checksum does not match"):
        again = _run(saved, TEXTS, out)
    assert (out / "part-000001.parquet").stat().st_mtime_ns == kept
    df = again.to_pandas()
    assert df["index"].tolist() == first["index"].tolist()
    for x, y in zip(df.scores, first.scores):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)
    assert again.check() == []


def test_summarize_refuses_a_folder_whose_shards_do_not_match_its_manifest(tmp_path, saved, capsys):
    out = tmp_path / "out"
    _run(saved, TEXTS, out)
    (out / "part-000003.parquet").unlink()
    _flip_a_byte_in_the_scores(out / "part-000001.parquet")
    capsys.readouterr()
    assert main(["summarize", str(out)]) == 2
    err = capsys.readouterr().err
    assert "shards do not match its manifest" in err and "part-000003.parquet missing" in err
    assert "part-000001.parquet damaged" in err and "Traceback" not in err
    assert open_attribution(out).check() == [
        "part-000001.parquet damaged (its checksum does not match its contents)",
        "part-000003.parquet missing",
    ]


# -- folders without a manifest ------------------------------------------------------------------


def test_own_shards_without_a_manifest_are_rebuilt_or_cleared(tmp_path, saved):
    out = tmp_path / "out"
    first = _run(saved, TEXTS, out).to_pandas()
    (out / MANIFEST_NAME).unlink()  # e.g. a copy that dropped the dot file
    before = _mtimes(out)
    rebuilt = _run(saved, TEXTS, out)  # resume: recognised by the shards' checksums, nothing recomputed
    assert rebuilt.complete and rebuilt.counts()["rows"] == 36 and rebuilt.check() == []
    assert {k: v for k, v in _mtimes(out).items() if k in before} == before
    # another run's shards and no manifest: resume refuses, resume=False clears them
    (out / MANIFEST_NAME).unlink()
    with pytest.raises(ResumeError, match=r"shards of another run and no \.manifest\.json.*resume=False"):
        _run(saved, TEXTS[:12], out, target="POSITIVE")
    res = _run(saved, TEXTS[:12], out, target="POSITIVE", resume=False)
    assert _shards(out) == ["part-000000.parquet", "part-000001.parquet"]
    assert res.to_pandas().target.tolist() == [2] * 12 and len(first) == 36


def test_a_folder_of_the_previous_format_is_read_but_not_resumed_into(tmp_path, saved):
    out = tmp_path / "out"
    _run(saved, TEXTS[:12], out)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    manifest["format"] = "captum_normxlogit.dataset/1"
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    handle = open_attribution(out)
    assert handle.legacy and len(handle.to_pandas()) == 12
    with pytest.raises(ResumeError, match=r"earlier version of attribute_dataset .*--no-resume"):
        _run(saved, TEXTS[:12], out)
    res = _run(saved, TEXTS[:12], out, resume=False)
    assert not res.legacy and res.check() == []


# -- the settings object -------------------------------------------------------------------------


def test_settings_object_is_the_one_source_of_the_task_and_the_manifest(tmp_path, saved):
    import dataclasses

    model, tok = _load(saved)
    settings = DatasetSettings(shard_size=6, target="POSITIVE", layers=[0, 2], progress=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.shard_size = 7  # type: ignore[misc]  # frozen: the assignment must fail
    a = attribute_dataset(model, tok, TEXTS[:12], tmp_path / "a", settings=settings)
    b = attribute_dataset(
        model, tok, TEXTS[:12], tmp_path / "b", shard_size=6, target="POSITIVE", layers=[0, 2], progress=False
    )
    assert a.manifest["settings"] == b.manifest["settings"] and a.manifest["fingerprint"] == b.manifest["fingerprint"]
    assert a.manifest["settings"]["shard_size"] == 6 and a.manifest["settings"]["layers"] == [0, 2]
    assert a.to_pandas().target.tolist() == [2] * 12 and len(a.to_pandas().layer_scores[0]) == 2
    with pytest.raises(ValueError, match="not both"):
        attribute_dataset(model, tok, TEXTS[:12], tmp_path / "c", settings=settings, shard_size=3)
    with pytest.raises(ValueError, match="shard_size must be a positive int"):
        settings.replace(shard_size=0)
    assert not (tmp_path / "c").exists()


# -- merging per-node folders --------------------------------------------------------------------


def _split(out, tmp_path):
    import shutil

    nodes = [tmp_path / "node0", tmp_path / "node1"]
    for n, node in enumerate(nodes):
        node.mkdir()
        for name in _shards(out):
            if int(name[5:11]) % 2 == n:
                shutil.copyfile(out / name, node / name)
    shutil.copyfile(out / MANIFEST_NAME, nodes[0] / MANIFEST_NAME)
    return nodes


def test_merge_combines_per_node_folders_and_refuses_mismatches(tmp_path, saved, capsys):
    from captum_normxlogit.dataset import merge_attributions

    out = tmp_path / "one"
    full = _run(saved, TEXTS, out).to_pandas()
    nodes = _split(out, tmp_path)
    merged = merge_attributions(nodes, tmp_path / "merged")
    df = merged.to_pandas()
    assert merged.complete and merged.check() == [] and df["index"].tolist() == full["index"].tolist()
    for x, y in zip(df.scores, full.scores):
        np.testing.assert_array_equal(x, y)
    # a node's shard missing, or of another run: refused in a sentence, nothing written
    (nodes[1] / "part-000003.parquet").unlink()
    with pytest.raises(ResumeError, match=r"no folder holds part-000003\.parquet"):
        merge_attributions(nodes, tmp_path / "m2")
    other = tmp_path / "other"
    _run(saved, TEXTS, other, target="POSITIVE")
    import shutil

    shutil.copyfile(other / "part-000003.parquet", nodes[1] / "part-000003.parquet")
    capsys.readouterr()
    assert main(["merge-dataset", str(nodes[0]), str(nodes[1]), "--output", str(tmp_path / "m3")]) == 2
    assert "part-000003.parquet is not the shard the manifest lists" in capsys.readouterr().err
    shutil.copyfile(other / MANIFEST_NAME, nodes[1] / MANIFEST_NAME)
    with pytest.raises(ResumeError, match="hold different runs"):
        merge_attributions(nodes, tmp_path / "m4")
    assert not any((tmp_path / m).exists() for m in ("m2", "m3", "m4"))
