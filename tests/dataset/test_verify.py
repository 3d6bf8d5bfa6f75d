"""verify_summary(): effects against a plain per-example occlusion loop, interval coverage, K, cap, cache."""

import json
import math

import numpy as np
import pytest
import torch

from captum_normxlogit.dataset import attribute_dataset, summarize
from captum_normxlogit.dataset import verify as V
from tests._support import saved as S

CLASSES = {name: i for i, name in S.LABELS.items()}


def _rows():
    extras = ("", "good", "not bad", "dull plot", "a witty film")
    return [f"{s} {e}".strip() for e in extras for s in S.SENTENCES]


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    tok, model = S.wordpiece(), S.classifier()
    out = tmp_path_factory.mktemp("verify") / "run"
    handle = attribute_dataset(model, tok, _rows(), out, shard_size=16, progress=False)
    summary = summarize(handle.to_pandas(), special_tokens=tok.all_special_tokens, min_count=2)
    return tok, model, summary, out


def _words(tokens):
    """(word, token positions) of a WordPiece sequence: a token plus the ## pieces after it."""
    starts = [i for i, t in enumerate(tokens) if not t.startswith("##")]
    spans = [list(range(a, b)) for a, b in zip(starts, starts[1:] + [len(tokens)])]
    return [("".join(tokens[i][2:] if k else tokens[i] for k, i in enumerate(span)), span) for span in spans]


def _direct(model, tok, frame, cls, word, rows=None):
    """P(cls) before minus after masking every occurrence, one unpadded example at a time."""
    drops = []
    for r, (ids, label) in enumerate(zip(frame.input_ids, frame.target_label)):
        if label != cls or (rows is not None and r not in rows):
            continue
        hit = [p for w, span in _words(tok.convert_ids_to_tokens(list(ids))) if w == word for p in span]
        if not hit:
            continue
        ablated = [tok.mask_token_id if i in hit else int(v) for i, v in enumerate(ids)]
        with torch.no_grad():
            before = model(input_ids=torch.tensor([list(ids)])).logits.softmax(-1)[0, CLASSES[cls]]
            after = model(input_ids=torch.tensor([ablated])).logits.softmax(-1)[0, CLASSES[cls]]
        drops.append(float(before - after))
    return drops


def test_effects_equal_a_direct_occlusion_loop(setting):
    tok, model, summary, _ = setting
    verified = V.verify_summary(summary, model, tok, top_k=6, max_examples=None, max_tokens_per_batch=64, window=7)
    assert len(verified.effects) > 0 and model.training is False
    for row in verified.effects.itertuples():
        drops = _direct(model, tok, summary.frame, row[1], row.item)
        assert row.n == row.n_containing == len(drops) > 0
        assert row.effect == pytest.approx(np.mean(drops), abs=1e-5)
        if len(drops) > 1:  # the interval is the bootstrap of the loop's drops, seeded per item
            _, low, high = V.effect_interval(drops, seed=f"0:{row[1]}:{row.item}")
            assert (row.effect_low, row.effect_high) == pytest.approx((low, high), abs=1e-5)
            assert low <= np.mean(drops) <= high
            assert row.effect_includes_0 == (row.effect_low <= 0 <= row.effect_high)


def test_top_k_picks_the_statistics_top_and_orders_by_lower_bound(setting):
    tok, model, summary, _ = setting
    verified = V.verify_summary(summary, model, tok, top_k=4, max_examples=None)
    for cls in summary.classes:
        expected = summary.top(cls, 4)["item"].tolist()
        got = verified.effects[verified.effects["class"] == cls].sort_values("candidate_rank")["item"].tolist()
        assert got == expected
        top = verified.top(cls)
        assert sorted(top["item"]) == sorted(expected) and top["rank"].tolist() == list(range(1, len(top) + 1))
        lows = top["effect_low"].fillna(-np.inf).tolist()
        assert lows == sorted(lows, reverse=True)
        by_stat = verified.top(cls, None, order="statistic")
        assert by_stat["item"].tolist() == summary.top(cls, None)["item"].tolist()
        assert by_stat["effect"].notna().sum() == len(expected)
    assert "effect" in verified.top(None).columns


def test_cap_is_seeded_and_measures_a_sample(setting):
    tok, model, summary, _ = setting
    a = V.verify_summary(summary, model, tok, top_k=3, max_examples=3, seed=1)
    b = V.verify_summary(summary, model, tok, top_k=3, max_examples=3, seed=1)
    assert (a.effects["n"] <= 3).all() and (a.effects["n_containing"] > 3).any()
    assert a.effects[["item", "n", "effect"]].equals(b.effects[["item", "n", "effect"]])
    c = V.verify_summary(summary, model, tok, top_k=3, max_examples=3, seed=2)
    assert not np.allclose(a.effects["effect"], c.effects["effect"])
    # a word's sample does not depend on K: its effect is the same with more candidates
    more = V.verify_summary(summary, model, tok, top_k=6, max_examples=3, seed=1)
    merged = a.effects.merge(more.effects, on=["class", "item"])
    np.testing.assert_allclose(merged.effect_x, merged.effect_y, atol=1e-6)  # batch mates: rounding only


def test_t_quantile_against_the_table():
    for df, value in ((1, 12.7062), (4, 2.7764), (6, 2.4469), (10, 2.2281), (30, 2.0423), (100, 1.9840)):
        assert V.t_quantile(df) == pytest.approx(value, abs=2e-4)


@pytest.mark.parametrize("n, p_big", [(30, 0.2), (100, 0.2), (100, 0.05)])
def test_interval_covers_a_known_effect(n, p_big):
    # drops like an occlusion's: mostly near 0, some examples lean hard on the word; the true mean is known
    rng = np.random.default_rng(0)
    true_mean = p_big * 0.3 + (1 - p_big) * 0.01
    hits, draws = 0, 1000
    for i in range(draws):
        big = rng.random(n) < p_big
        d = np.where(big, rng.normal(0.3, 0.1, n), rng.normal(0.01, 0.02, n))
        _, low, high = V.effect_interval(d, seed=i)
        hits += low <= true_mean <= high
    assert hits / draws >= 0.935  # 95 % nominal; 1,000 draws: binomial sd 0.007


def test_interval_edge_cases():
    assert all(math.isnan(v) for v in V.effect_interval([]))
    mean, low, high = V.effect_interval([0.25])
    assert mean == 0.25 and math.isnan(low) and math.isnan(high)
    assert V.effect_interval([0.1, 0.1, 0.1]) == pytest.approx((0.1, 0.1, 0.1))
    assert V.effect_interval([0.0, 1.0], seed=3) == V.effect_interval([0.0, 1.0], seed=3)


def test_cache_is_read_back_and_keyed_by_the_settings(setting, monkeypatch):
    tok, model, summary, out = setting
    first = V.verify_summary(summary, model, tok, top_k=3, cache_dir=out)
    files = sorted(p.name for p in out.glob(".verify-*.json"))
    assert len(files) == 1 and not first.cached
    assert len(json.loads((out / files[0]).read_text())["effects"]) == len(first.effects)

    def boom(*a, **k):
        raise AssertionError("measured again")

    monkeypatch.setattr(V, "class_probabilities", boom)
    again = V.verify_summary(summary, model, tok, top_k=3, cache_dir=out)
    assert again.cached and again.effects.equals(first.effects)
    with pytest.raises(AssertionError, match="measured again"):  # another K is measured
        V.verify_summary(summary, model, tok, top_k=4, cache_dir=out)
    with pytest.raises(AssertionError, match="measured again"):  # another model too
        V.verify_summary(summary, S.classifier(seed=5), tok, top_k=3, cache_dir=out)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"top_k": 0}, "top_k"),
        ({"max_examples": 0}, "max_examples"),
        ({"level": "x"}, "level"),
        ({"statistic": "x"}, "statistic"),
    ],
)
def test_bad_settings_are_refused(setting, kwargs, message):
    tok, model, summary, _ = setting
    with pytest.raises(ValueError, match=message):
        V.verify_summary(summary, model, tok, **kwargs)


def test_rows_without_input_ids_are_refused(setting):
    tok, model, summary, _ = setting
    bare = summarize(summary.frame.drop(columns=["input_ids"]), special_tokens=tok.all_special_tokens, min_count=2)
    with pytest.raises(ValueError, match="input_ids"):
        V.verify_summary(bare, model, tok)


_SCRIPT = """
import json, sys
import pandas as pd
from captum_normxlogit._models.load import load_model_folder
from captum_normxlogit.dataset import summarize
from captum_normxlogit.dataset.verify import verify_summary
model, tok, _ = load_model_folder(sys.argv[1])
summary = summarize(pd.read_parquet(sys.argv[2]), special_tokens=tok.all_special_tokens, min_count=2)
verified = verify_summary(summary, model, tok, top_k=5, max_examples=4, window=6, max_tokens_per_batch=48)
import torch.distributed as dist
if not dist.is_initialized() or dist.get_rank() == 0:
    verified.effects.to_json(sys.argv[3], orient="records")
"""


def test_two_processes_give_the_effects_of_one(setting, tmp_path):
    import os
    import pathlib
    import subprocess
    import sys

    import pandas as pd

    pytest.importorskip("accelerate")
    tok, model, _, out = setting
    model_dir = S.save(tmp_path / "cls", model, tok)
    script = tmp_path / "verify.py"
    script.write_text(_SCRIPT)
    root = pathlib.Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    results = {}
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    for name, launcher in (("one", []), ("two", torchrun)):
        command = [sys.executable, *launcher, str(script), model_dir, str(out), str(tmp_path / f"{name}.json")]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=420, cwd=root)
        assert done.returncode == 0, done.stderr[-3000:]
        results[name] = pd.read_json(tmp_path / f"{name}.json", orient="records")
    one, two = results["one"], results["two"]
    assert len(one) > 0 and one[["class", "item", "n"]].equals(two[["class", "item", "n"]])
    effects = ["effect", "effect_low", "effect_high"]
    np.testing.assert_allclose(one[effects], two[effects], atol=1e-6)


def test_stored_prob_replaces_the_clean_pass_for_the_same_model(setting, monkeypatch):
    tok, model, summary, _ = setting
    sizes = []
    real = V.class_probabilities

    def counted(model_, rows, *a, **k):
        sizes.append(len(rows))
        return real(model_, rows, *a, **k)

    monkeypatch.setattr(V, "class_probabilities", counted)
    weights = V.weights_fingerprint(model)
    same = V.verify_summary(summary, model, tok, top_k=6, max_examples=None, rows_weights=weights)
    assert sum(sizes) == int(same.effects["n"].sum())  # occluded rows only: no clean pass
    for row in same.effects.itertuples():  # the stored float32 prob gives the loop's effects
        drops = _direct(model, tok, summary.frame, row[1], row.item)
        assert row.n == len(drops) and row.effect == pytest.approx(np.mean(drops), abs=1e-5)
    sizes.clear()
    other = V.verify_summary(summary, model, tok, top_k=6, max_examples=None, rows_weights="0" * 16)
    assert sum(sizes) > int(other.effects["n"].sum())  # rows of another model: clean P measured
    np.testing.assert_allclose(same.effects["effect"], other.effects["effect"], atol=1e-5)


def test_the_handle_passes_its_manifest_s_weights_so_no_clean_pass_runs(setting, monkeypatch, tmp_path):
    from captum_normxlogit.dataset import open_attribution

    tok, model, _, out = setting
    sizes = []
    real = V.class_probabilities

    def counted(model_, rows, *a, **k):
        sizes.append(len(rows))
        return real(model_, rows, *a, **k)

    monkeypatch.setattr(V, "class_probabilities", counted)
    settings = {"tokenizer": tok, "min_count": 2, "top_k": 3, "max_examples": 4}
    verified = open_attribution(out).summary(verify=True, model=model, **settings)
    assert not verified.cached and sum(sizes) == int(verified.effects["n"].sum())
    sizes.clear()  # another model than the manifest's: its clean P(class) is measured
    other = S.classifier(seed=5)
    verified = open_attribution(out).summary(verify=True, model=other, **settings)
    assert sum(sizes) > int(verified.effects["n"].sum())
