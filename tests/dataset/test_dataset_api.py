"""attribute_dataset: every row against the independent per-token reference, read back by pandas and datasets."""

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from captum_normxlogit import LLMNormXLogit, NormXLogit
from captum_normxlogit.dataset import (
    MANIFEST_NAME,
    SCHEMA,
    SourceError,
    TargetError,
    attribute_dataset,
    column,
    open_attribution,
)
from tests._reference import reference
from tests._support import saved as S


@pytest.fixture(scope="module")
def tok():
    return S.wordpiece()


@pytest.fixture(scope="module")
def bpe():
    return S.bytelevel()


def _ref_row(model, tokenizer, ids, *, target=None, token_type_ids=None, mask_token_id=None):
    """Reference scores and the model's own probabilities, for one unpadded example."""
    x = torch.tensor([ids])
    tt = None if token_type_ids is None else torch.tensor([token_type_ids])
    ref = reference(model, x, torch.ones_like(x), tt, target=target, mask_token_id=mask_token_id)
    return ref


def test_classifier_rows_match_reference_in_index_order(tmp_path, tok):
    model = S.classifier()
    texts = S.SENTENCES * 2
    # small shards and a tight token budget: several shards, several batches per shard
    res = attribute_dataset(
        model, tok, texts, tmp_path / "out", shard_size=5, max_tokens_per_batch=30, layers=[0, 1], progress=False
    )
    df = pd.read_parquet(tmp_path / "out")  # the folder reads as one table despite .manifest.json
    assert df["index"].tolist() == list(range(len(texts)))
    assert (tmp_path / "out" / MANIFEST_NAME).is_file()
    for row in df.itertuples():
        expected_ids = tok(texts[row.index])["input_ids"]
        assert list(row.input_ids) == expected_ids
        assert list(row.tokens) == tok.convert_ids_to_tokens(expected_ids)
        ref = _ref_row(model, tok, expected_ids)
        np.testing.assert_allclose(row.scores, ref.scores[2][0].numpy(), rtol=1e-4, atol=1e-5)
        for k, layer in enumerate([0, 1]):
            np.testing.assert_allclose(row.layer_scores[k], ref.scores[layer][0].numpy(), rtol=1e-4, atol=1e-5)
        probs = ref.logits[0].softmax(-1)
        assert row.target == ref.targets[0] == row.predicted
        assert row.target_label == S.LABELS[row.target]
        assert row.prob == pytest.approx(float(probs[row.target]), abs=1e-5)
        assert pd.isna(row.error)
    counts = res.counts()
    assert counts["rows"] == len(texts) and counts["skipped"] == 0 and counts["shards"] == 5
    assert counts["tokens"] == sum(len(ids) for ids in df.input_ids)
    assert res.manifest["status"] == "complete" and res.manifest["settings"]["layers"] == [0, 1]


def test_datasets_reads_the_folder_and_schema_is_fixed(tmp_path, tok):
    datasets = pytest.importorskip("datasets")
    attribute_dataset(S.classifier(), tok, S.SENTENCES, tmp_path / "out", shard_size=4, progress=False)
    ds = datasets.load_dataset("parquet", data_dir=str(tmp_path / "out"), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds["index"] == list(range(len(S.SENTENCES)))
    for path in sorted((tmp_path / "out").glob("part-*.parquet")):
        assert pq.read_schema(path).remove_metadata() == SCHEMA
    assert open_attribution(tmp_path / "out").to_pandas(["index"])["index"].tolist() == ds["index"]


def test_pairs_with_gold_label_column_as_target(tmp_path, tok):
    model = S.classifier()
    data: list[dict[str, Any]] = [
        {"a": "a good movie", "b": "the plot is thin", "y": "POSITIVE"},
        {"a": "dull film", "b": "bad story", "y": 0},
        {"a": "witty", "b": "good", "y": "negative"},
    ]
    df = attribute_dataset(
        model,
        tok,
        data,
        tmp_path / "out",
        text_column="a",
        pair_column="b",
        label_column="y",
        target=column("y"),
        progress=False,
    ).to_pandas()
    assert df.target.tolist() == [2, 0, 0] and df.label.tolist() == ["POSITIVE", "0", "negative"]
    assert df.label_id.tolist() == [2, 0, 0] and df.text_pair.tolist() == ["the plot is thin", "bad story", "good"]
    for row, record in zip(df.itertuples(), data):
        enc = tok(record["a"], record["b"])
        assert list(row.input_ids) == enc["input_ids"]
        ref = _ref_row(model, tok, enc["input_ids"], target=row.target, token_type_ids=enc["token_type_ids"])
        np.testing.assert_allclose(row.scores, ref.scores[2][0].numpy(), rtol=1e-4, atol=1e-5)


def test_regression_rows_hold_the_value(tmp_path, tok):
    model = S.regression()
    df = attribute_dataset(model, tok, S.SENTENCES[:4], tmp_path / "out", progress=False).to_pandas()
    for row in df.itertuples():
        ref = _ref_row(model, tok, list(row.input_ids))
        assert row.value == pytest.approx(float(ref.logits[0, 0]), abs=1e-5)
        np.testing.assert_allclose(row.scores, ref.scores[2][0].numpy(), rtol=1e-4, atol=1e-5)
        assert pd.isna(row.target) and pd.isna(row.prob)
    with pytest.raises(TargetError, match="regression"):
        attribute_dataset(model, tok, S.SENTENCES[:2], tmp_path / "other", target=0, progress=False)
    assert not (tmp_path / "other").exists()


def test_masked_lm_one_mask_per_text(tmp_path, tok):
    model = S.masked_lm()
    texts = ["a [MASK] movie .", "the plot is [MASK]", "no mask here", "[MASK] and [MASK]"]
    df = attribute_dataset(model, tok, texts, tmp_path / "out", on_error="skip", progress=False).to_pandas()
    assert df.error.isna().tolist() == [True, True, False, False]
    assert "exactly once" in df.error[2] and "found 0" in df.error[2] and "found 2" in df.error[3]
    for row in df.iloc[:2].itertuples():
        ref = _ref_row(model, tok, list(row.input_ids), mask_token_id=tok.mask_token_id)
        np.testing.assert_allclose(row.scores, ref.scores[2][0].numpy(), rtol=1e-4, atol=1e-5)
        where = list(row.input_ids).index(tok.mask_token_id)
        assert row.target == ref.targets[0]
        assert row.prob == pytest.approx(float(ref.logits[0, where].softmax(-1)[int(row.target)]), abs=1e-5)


def test_causal_lm_next_token(tmp_path, bpe):
    model = S.causal_lm(bpe)
    texts = ["The capital of France is", "The capital", "Rome is"]
    df = attribute_dataset(model, bpe, texts, tmp_path / "out", progress=False).to_pandas()
    for row in df.itertuples():
        ref = _ref_row(model, bpe, list(row.input_ids))
        np.testing.assert_allclose(row.scores, ref.scores[2][0].numpy(), rtol=1e-4, atol=1e-5)
        assert row.target == ref.targets[0]
        assert row.prob == pytest.approx(float(ref.logits[0, -1].softmax(-1)[int(row.target)]), abs=1e-5)
        assert row.target_label == bpe.decode([row.target])


def test_causal_lm_teacher_forced_matrix(tmp_path, bpe):
    model = S.causal_lm(bpe)
    data = [{"text": "The capital of France is", "next": " Paris ."}, {"text": "The capital", "next": " of"}]
    df = attribute_dataset(model, bpe, data, tmp_path / "out", target=column("next"), progress=False).to_pandas()
    for row, record in zip(df.itertuples(), data):
        prompt = bpe(record["text"])["input_ids"]
        cont = bpe.encode(record["next"], add_special_tokens=False)
        assert list(row.output_ids) == cont and list(row.input_ids) == prompt
        matrix = np.stack(row.token_attr)
        assert matrix.shape == (len(cont), len(prompt))
        for j, y in enumerate(cont):  # row j: NormXLogit(prompt + y_<j, target=y_j) on the prompt columns
            ref = _ref_row(model, bpe, prompt + cont[:j], target=y)
            np.testing.assert_allclose(matrix[j], ref.scores[2][0, : len(prompt)].numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(row.scores, matrix.sum(0), rtol=1e-5, atol=1e-6)
        expected = LLMNormXLogit(model, bpe).attribute(record["text"], target=record["next"])
        np.testing.assert_allclose(row.output_probs, expected.output_probs.numpy(), rtol=1e-4)
        assert row.prob == pytest.approx(float(np.prod(row.output_probs)), rel=1e-5)


def test_fixed_target_foil_and_normxlogit_instance(tmp_path, tok):
    model = S.classifier()
    nx = NormXLogit(model, multiply_by_inputs=False)  # LogAt alone: the instance's setting is used
    df = attribute_dataset(
        nx, tok, S.SENTENCES[:3], tmp_path / "out", target="positive", foil="NEGATIVE", progress=False
    ).to_pandas()
    for row in df.itertuples():
        ref_foil = reference(model, torch.tensor([list(row.input_ids)]), target=0)
        ref_target = reference(model, torch.tensor([list(row.input_ids)]), target=2)
        np.testing.assert_allclose(
            row.scores, (ref_target.logat[2][0] - ref_foil.logat[2][0]).numpy(), rtol=1e-4, atol=1e-5
        )
        assert row.target == 2 and row.foil == 0
    with pytest.raises(TargetError, match="not a class"):
        attribute_dataset(model, tok, S.SENTENCES, tmp_path / "bad", target="MAYBE", progress=False)
    with pytest.raises(SourceError, match="no column 'label'"):
        attribute_dataset(model, tok, S.SENTENCES, tmp_path / "bad", label_column="label", progress=False)
    assert not (tmp_path / "bad").exists()


def test_local_files_and_batching_do_not_change_rows(tmp_path, tok):
    model = S.classifier()
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"sentence": s, "y": i % 3}) + "\n" for i, s in enumerate(S.SENTENCES)))
    a = attribute_dataset(
        model,
        tok,
        path,
        tmp_path / "a",
        text_column="sentence",
        label_column="y",
        shard_size=5,
        max_tokens_per_batch=10_000,
        progress=False,
    ).to_pandas()
    csv = tmp_path / "data.csv"
    pd.DataFrame({"sentence": S.SENTENCES, "y": [i % 3 for i in range(len(S.SENTENCES))]}).to_csv(csv, index=False)
    b = attribute_dataset(
        model,
        tok,
        csv,
        tmp_path / "b",
        text_column="sentence",
        label_column="y",
        shard_size=3,
        max_tokens_per_batch=1,
        progress=False,
    ).to_pandas()  # one example per batch
    assert a.index.tolist() == b.index.tolist() and a.label.tolist() == b.label.tolist()
    for x, y in zip(a.scores, b.scores):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    assert a.label_id.tolist() == [i % 3 for i in range(len(S.SENTENCES))]


def test_datasets_objects_and_arrow_files_give_the_same_rows(tmp_path, tok):
    datasets = pytest.importorskip("datasets")
    model = S.classifier()
    records = {"sentence": S.SENTENCES, "y": [i % 3 for i in range(len(S.SENTENCES))]}
    ds = datasets.Dataset.from_dict(records)
    ds.to_parquet(str(tmp_path / "d.parquet"))
    arrow = tmp_path / "d.arrow"
    import pyarrow as pa

    with pa.OSFile(str(arrow), "wb") as sink, pa.ipc.new_stream(sink, ds.data.table.schema) as writer:
        writer.write_table(ds.data.table)
    kw: dict[str, Any] = dict(text_column="sentence", label_column="y", shard_size=4, progress=False)
    frames = [
        attribute_dataset(model, tok, data, tmp_path / name, **kw).to_pandas()
        for name, data in (("ds", ds), ("it", ds.to_iterable_dataset()), ("pq", tmp_path / "d.parquet"), ("ar", arrow))
    ]
    for df in frames:
        assert df["index"].tolist() == list(range(len(S.SENTENCES)))
        assert df.text.tolist() == S.SENTENCES and df.label_id.tolist() == records["y"]
        for x, y in zip(df.scores, frames[0].scores):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    with pytest.raises(SourceError, match="DatasetDict"):
        attribute_dataset(model, tok, datasets.DatasetDict({"test": ds}), tmp_path / "dd", **kw)
    with pytest.raises(SourceError, match="unsupported file type"):
        attribute_dataset(model, tok, tmp_path / "d.txt", tmp_path / "txt", **kw)


def test_handle_counts_and_summary_hook(tmp_path, tok):
    import importlib.util

    res = attribute_dataset(
        S.classifier(), tok, S.SENTENCES + [""], tmp_path / "out", on_error="skip", shard_size=5, progress=False
    )
    df = res.to_pandas()
    counts = res.counts()
    assert counts == {"rows": len(df), "skipped": 1, "tokens": int(df.input_ids.dropna().map(len).sum()), "shards": 3}
    assert res.complete and [p.name for p in res.files] == [f"part-00000{k}.parquet" for k in range(3)]
    if importlib.util.find_spec("captum_normxlogit.dataset.summary") is None:
        assert res.summary() == counts  # until the dataset-level summary is installed
    with pytest.raises(FileNotFoundError, match="no .manifest.json"):
        open_attribution(tmp_path)
