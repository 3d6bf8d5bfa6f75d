"""A long run's bookkeeping is linear in its shards: manifest writes, shard reads and folder listings are
counted (not timed) for a short and a four-times-longer run, a fresh one and a resumed one."""

import pathlib

import pytest

from captum_normxlogit.dataset import _folder, _manifest, _writer, api, attribute_dataset
from tests._support import saved as S


@pytest.fixture(scope="module")
def model_tok():
    return S.classifier(), S.wordpiece()


def _counted_run(monkeypatch, model_tok, tmp_path, n_shards: int, resume_twice: bool = False):
    model, tok = model_tok
    texts = [S.SENTENCES[i % len(S.SENTENCES)] for i in range(n_shards)]
    out = tmp_path / f"out{n_shards}"
    counts = {"manifest_writes": 0, "manifest_bytes": 0, "shard_reads": 0, "listings": 0}
    real_write, real_inspect, real_iterdir = _manifest.atomic_write_text, _writer.inspect_shard, pathlib.Path.iterdir
    real_glob = pathlib.Path.glob

    def write(path, text):
        counts["manifest_writes"] += 1
        counts["manifest_bytes"] += len(text)
        real_write(path, text)

    def inspect(path, *args, **kwargs):
        counts["shard_reads"] += 1
        return real_inspect(path, *args, **kwargs)

    def iterdir(self):
        counts["listings"] += self == out
        return real_iterdir(self)

    def glob(self, pattern, **kw):
        counts["listings"] += self == out
        return real_glob(self, pattern, **kw)

    monkeypatch.setattr(_manifest, "atomic_write_text", write)
    for module in (api, _folder):  # every shard read of a run goes through inspect_shard, imported by these
        monkeypatch.setattr(module, "inspect_shard", inspect)
    monkeypatch.setattr(pathlib.Path, "iterdir", iterdir)
    monkeypatch.setattr(pathlib.Path, "glob", glob)
    attribute_dataset(model, tok, texts, out, shard_size=1, progress=False)
    fresh = dict(counts)
    for key in counts:
        counts[key] = 0
    result = attribute_dataset(model, tok, texts, out, shard_size=1, progress=False)  # resumes: all kept
    assert result.counts()["shards"] == n_shards
    return fresh, dict(counts)


def test_bookkeeping_grows_linearly_with_the_shards(monkeypatch, model_tok, tmp_path):
    for short, long in zip(
        _counted_run(monkeypatch, model_tok, tmp_path, 3), _counted_run(monkeypatch, model_tok, tmp_path, 12)
    ):  # fresh, then resumed
        _check_linear(short, long)


def _check_linear(short, long):
    # the manifest is written a fixed number of times, not once per shard (each write holds every shard)
    assert long["manifest_writes"] == short["manifest_writes"] <= 3
    # its bytes grow with the shard list: linear is at most 4x for 4x the shards, a rewrite per shard 16x
    assert long["manifest_bytes"] <= 4 * short["manifest_bytes"]
    # every shard is read back a bounded number of times (resume check, final check), not once per later shard
    assert long["shard_reads"] <= 2 * 12 and long["shard_reads"] <= 4 * short["shard_reads"]
    # the folder is listed a fixed number of times, not per shard
    assert long["listings"] == short["listings"] <= 3
