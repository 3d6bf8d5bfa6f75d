"""Resume, faults and bad rows: SIGKILL mid-run, truncated shards, changed settings, on_error both ways."""

import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from captum_normxlogit.dataset import MANIFEST_NAME, DatasetRowError, ResumeError, attribute_dataset
from tests._support import saved as S

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEXTS = S.DATASET_TEXTS


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return S.save(tmp_path_factory.mktemp("models") / "cls", S.classifier(), S.wordpiece())


_load = S.load_classifier
_shards = S.shard_names


# The child runs attribute_dataset and SIGKILLs itself at a chosen point: `batch` = while computing the
# first batch after KILL_AFTER shards were written (a shard half done), `write` = after writing the shard's
# temporary file but before the rename.
_CHILD = textwrap.dedent("""
    import os, signal, sys
    import transformers as T
    from captum_normxlogit.dataset import api, _writer, attribute_dataset
    from captum_normxlogit.dataset._explainer import RowExplainer
    folder, out, mode, kill_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    model = T.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tok = T.AutoTokenizer.from_pretrained(folder)
    texts = [line.rstrip("\\n") for line in open(sys.argv[5], encoding="utf-8")]
    written = [0]
    real_write, real_run, real_pq = api.write_shard, RowExplainer.run, _writer.pq.write_table
    def write(*a, **k):
        real_write(*a, **k)
        written[0] += 1
    def run(self, batch):
        if mode == "batch" and written[0] >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_run(self, batch)
    def pq_write(table, where, **k):
        real_pq(table, where, **k)
        if mode == "write" and written[0] >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    api.write_shard, RowExplainer.run, _writer.pq.write_table = write, run, pq_write
    attribute_dataset(model, tok, texts, out, shard_size=8, max_tokens_per_batch=40, progress=False)
""")


@pytest.mark.parametrize("mode", ["batch", "write"])
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, saved, mode):
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(script), saved, str(out), mode, "2", str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _shards(out) == ["part-000000.parquet", "part-000001.parquet"]
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".captum_normxlogit-tmp-")]
    assert bool(leftovers) == (mode == "write")  # a killed write leaves only a hidden temporary
    assert len(pd.read_parquet(out)) == 16  # readers see the finished shards only

    mtimes = {name: (out / name).stat().st_mtime_ns for name in _shards(out)}
    model, tok = _load(saved)
    resumed = attribute_dataset(model, tok, TEXTS, out, shard_size=8, max_tokens_per_batch=40, progress=False)
    assert {name: (out / name).stat().st_mtime_ns for name in mtimes} == mtimes  # finished shards kept
    fresh = attribute_dataset(
        model, tok, TEXTS, tmp_path / "fresh", shard_size=8, max_tokens_per_batch=40, progress=False
    )
    a, b = resumed.to_pandas(), fresh.to_pandas()
    assert a["index"].tolist() == list(range(len(TEXTS))) == b["index"].tolist()  # none lost, none twice
    for x, y in zip(a.scores, b.scores):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)
    assert resumed.counts() == fresh.counts() and resumed.complete


def test_truncated_shard_is_detected_and_redone(tmp_path, saved):
    model, tok = _load(saved)
    out = tmp_path / "out"
    first = attribute_dataset(model, tok, TEXTS, out, shard_size=10, progress=False).to_pandas()
    victim = out / "part-000001.parquet"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])  # a cut-off copy
    with pytest.raises(Exception):
        pd.read_parquet(out)
    untouched = (out / "part-000000.parquet").stat().st_mtime_ns
    again = attribute_dataset(model, tok, TEXTS, out, shard_size=10, progress=False).to_pandas()
    assert (out / "part-000000.parquet").stat().st_mtime_ns == untouched
    assert again["index"].tolist() == first["index"].tolist()
    for x, y in zip(again.scores, first.scores):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)


def test_changed_settings_or_model_refuse_to_resume(tmp_path, saved):
    model, tok = _load(saved)
    out = tmp_path / "out"
    attribute_dataset(model, tok, TEXTS, out, shard_size=10, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(ResumeError, match=r"settings.target: None -> 'POSITIVE'"):
        attribute_dataset(model, tok, TEXTS, out, shard_size=10, target="POSITIVE", progress=False)
    with pytest.raises(ResumeError, match="shard_size"):
        attribute_dataset(model, tok, TEXTS, out, shard_size=7, progress=False)
    other = S.classifier(seed=5)  # same config, other weights
    with pytest.raises(ResumeError, match="weights_digest"):
        attribute_dataset(other, tok, TEXTS, out, shard_size=10, progress=False)
    with pytest.raises(ResumeError, match=r"data\.digest"):  # the data's identity is fingerprinted
        attribute_dataset(model, tok, list(reversed(TEXTS)), out, shard_size=10, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # refused: nothing touched
    # resume=False starts over with the new settings
    res = attribute_dataset(model, tok, TEXTS[:12], out, shard_size=7, target="POSITIVE", resume=False, progress=False)
    assert _shards(out) == ["part-000000.parquet", "part-000001.parquet"]
    assert res.to_pandas().target.tolist() == [2] * 12


def test_foreign_folder_is_refused(tmp_path, saved):
    model, tok = _load(saved)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for resume in (True, False):
        with pytest.raises(ResumeError, match="not written by attribute_dataset"):
            attribute_dataset(model, tok, TEXTS, out, resume=resume, progress=False)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_on_error_raise_stops_before_the_bad_shard_and_skip_records(tmp_path, saved):
    model, tok = _load(saved)
    texts: list[object] = list(TEXTS)  # one row below is not a string, on purpose
    texts[13] = "   "
    texts[20] = "good " * 40  # longer than the model's 24 tokens
    texts[25] = 7
    out = tmp_path / "out"
    with pytest.raises(DatasetRowError, match=r"row 13: text is empty") as info:
        attribute_dataset(model, tok, texts, out, shard_size=10, progress=False)
    assert info.value.index == 13
    assert _shards(out) == ["part-000000.parquet"]  # shard 1 (rows 10..19) was not written
    df = attribute_dataset(model, tok, texts, out, shard_size=10, on_error="skip", progress=False).to_pandas()
    assert df["index"].tolist() == list(range(len(texts)))
    bad = df[df.error.notna()]
    assert bad["index"].tolist() == [13, 20, 25]
    assert "at most 24" in bad.error[20] and "truncation=True" in bad.error[20]
    assert "int, not a string" in bad.error[25]
    assert bad.scores.isna().all() and df[df.error.isna()].scores.notna().all()
    res = attribute_dataset(
        model, tok, texts, tmp_path / "cut", shard_size=10, truncation=True, on_error="skip", progress=False
    )
    cut = res.to_pandas()
    assert len(cut.input_ids[20]) == 24 and cut.error.notna().sum() == 2
    assert res.counts()["skipped"] == 2
    assert (out / MANIFEST_NAME).is_file()
