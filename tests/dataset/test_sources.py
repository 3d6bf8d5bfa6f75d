"""Local files are read in bounded chunks: every row comes back once, whole and in file order."""

import csv
import json

from captum_normxlogit.dataset._sources import READ_CHUNKS, open_source


def _texts(n):
    # varied lengths, non-ASCII and characters JSON/CSV must escape, so lines cross chunk ends at odd places
    filler = 'é, ünïcode "quoted" '
    return [f"row {i}: {filler * (i % 7)}{'x' * (i % 53)}" for i in range(n)]


def _read_all(path, columns=("text", "label")):
    source = open_source(str(path), list(columns))
    got: list[dict] = []
    for _shard, start, count, items in source.shards(100):
        assert items is not None
        assert [index for index, _ in items] == list(range(start, start + count))
        got.extend(record for _, record in items)
    return source, got


def test_jsonl_larger_than_several_read_chunks_gives_every_row_once(tmp_path, monkeypatch):
    monkeypatch.setitem(READ_CHUNKS, "json", {"chunksize": 16 << 10})  # many chunk ends in a small file
    texts = _texts(2000)
    path = tmp_path / "data.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for i, text in enumerate(texts):
            handle.write(json.dumps({"text": text, "label": i % 3}, ensure_ascii=False) + "\n")
    assert path.stat().st_size > 3 * READ_CHUNKS["json"]["chunksize"]
    source, got = _read_all(path)
    assert source.length == len(texts)
    assert got == [{"text": text, "label": i % 3} for i, text in enumerate(texts)]


def test_csv_longer_than_several_read_chunks_gives_every_row_once(tmp_path, monkeypatch):
    monkeypatch.setitem(READ_CHUNKS, "csv", {"chunksize": 100})
    n = 3 * READ_CHUNKS["csv"]["chunksize"] + 17
    texts = _texts(n)
    path = tmp_path / "data.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([text, i % 3] for i, text in enumerate(texts))
    _, got = _read_all(path)
    assert got == [{"text": text, "label": i % 3} for i, text in enumerate(texts)]


def test_a_list_of_strings_is_read_as_the_named_text_column(tmp_path):
    """Issue 18: in-memory strings with text_column="sentence" raised IndexError in _sources.py."""
    import pandas as pd
    import pytest

    from captum_normxlogit.dataset import attribute_dataset
    from captum_normxlogit.dataset._sources import SourceError
    from tests._support import saved as S

    texts = S.SENTENCES[:5]
    named = attribute_dataset(
        S.classifier(), S.wordpiece(), texts, tmp_path / "named", text_column="sentence", progress=False
    )
    plain = attribute_dataset(S.classifier(), S.wordpiece(), texts, tmp_path / "plain", progress=False)
    got, want = pd.read_parquet(named.output_dir), pd.read_parquet(plain.output_dir)
    assert got["text"].tolist() == texts and got["error"].isna().all()
    for a, b in zip(got["scores"], want["scores"]):
        assert list(a) == list(b)
    with pytest.raises(SourceError, match="list of strings, which has only a text; it has no column 'gold'"):
        open_source(texts, ["sentence", "gold"])
