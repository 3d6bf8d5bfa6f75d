"""The bar's total (cheap row counts of local files) and its sums over ranks."""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from captum_normxlogit.dataset._distributed import RankContext, rank_context
from captum_normxlogit.dataset._progress import RunProgress, count_file_rows


def _texts(n):
    return [f'row {i}, "quoted"\nsecond line' if i % 3 == 0 else f"row {i}" for i in range(n)]


def test_counts_match_what_a_full_read_finds(tmp_path):
    texts = _texts(50)
    frame = pd.DataFrame({"text": texts, "y": range(50)})
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts) + "\n\n")
    frame.to_csv(tmp_path / "d.csv", index=False)  # quoted fields with newlines: more lines than rows
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "d.parquet")
    table = pa.Table.from_pandas(frame)
    with pa.OSFile(str(tmp_path / "d.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=7):
            writer.write_batch(batch)
    with pa.OSFile(str(tmp_path / "f.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    assert (tmp_path / "d.csv").read_text().count("\n") > 50  # a line count would be wrong here
    assert len(pd.read_csv(tmp_path / "d.csv")) == 50  # the independent reading
    for name in ("d.jsonl", "d.csv", "d.parquet", "d.arrow", "f.arrow"):
        assert count_file_rows(tmp_path / name) == 50, name


def test_files_that_cannot_be_counted_give_none(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([{"text": "a"}]))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    (tmp_path / "latin.csv").write_bytes("text\ncaf\xe9\n".encode("latin-1"))
    for name in ("a.json", "bad.parquet", "latin.csv", "missing.jsonl"):
        assert count_file_rows(tmp_path / name) is None, name


class _TwoRanks(RankContext):
    """Rank 0 of a pretend two-rank run: the other rank's counts come from a script, summed like all_reduce."""

    def __init__(self, other):
        super().__init__(0, 2, None)
        self.other, self.calls = list(other), 0

    def start_sum(self, values):
        theirs = self.other[self.calls]
        self.calls += 1
        return lambda: [a + b for a, b in zip(values, theirs)]


def test_rank_zero_counts_every_ranks_rows(capsys):
    # shards 0..3: rank 0 computes shard 0 (4 rows) and keeps shard 2 (4 rows); rank 1 computes 1 and 3 (4, 2)
    ctx = _TwoRanks([[4, 40, 0, 0, 1], [2, 20, 0, 0, 1], [0, 0, 0, 0, 0]])
    progress = RunProgress(ctx, 14, enabled=True)
    progress.computed(4, 30)
    progress.wrote_shard()
    progress.shard_done(0)
    progress.shard_done(1)  # end of round 1: the sum starts; read at the next round's end
    progress.kept(4)
    progress.shard_done(2)
    progress.shard_done(3)
    assert progress.bar.n == 8 and progress.bar.total == 10  # rank 1's first 4 rows; kept rows leave the total
    done = progress.close()
    assert done == {"kept": {"rows": 4, "shards": 1}, "written": {"rows": 10, "shards": 3}}
    assert ctx.calls == 3
    err = capsys.readouterr().err
    assert "10/10" in err and "kept 4" in err and "2 ranks" in err


def test_one_process_sums_nothing():
    progress = RunProgress(RankContext(0, 1, None), None, enabled=False)
    progress.computed(3, 9)
    progress.wrote_shard()
    progress.shard_done(0)
    progress.kept(5)
    assert progress.close() == {"kept": {"rows": 5, "shards": 1}, "written": {"rows": 3, "shards": 1}}


def test_one_gpu_named_under_several_ranks_is_refused(monkeypatch):
    import torch

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="each rank takes its own"):
        rank_context(torch.nn.Linear(2, 2), torch.device("cuda:1"))
