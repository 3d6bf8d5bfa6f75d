"""`normxlogit summarize DIR --verify`: effects in every file, the cache reused, the wrong model refused."""

import pandas as pd
import pytest

from captum_normxlogit._models.load import load_model_folder
from captum_normxlogit.cli import main
from captum_normxlogit.dataset import attribute_dataset, open_attribution
from captum_normxlogit.dataset.verify import verify_summary
from tests._support import saved as S


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("summarize-verify")
    model_dir = S.save(root / "model", S.classifier(), S.wordpiece())
    model, tok, _ = load_model_folder(model_dir)
    out = root / "attributions"
    attribute_dataset(model, tok, S.SENTENCES * 3, out, progress=False)
    return model_dir, out


def test_verify_writes_effects_and_reuses_its_cache(run, tmp_path, capsys):
    model_dir, out = run
    html, png, csv = tmp_path / "v.html", tmp_path / "v.png", tmp_path / "v.csv"
    args = ["summarize", str(out), "--min-count", "2", "--verify", "--top-k", "3", "--max-examples", "5"]
    assert main([*args, "--html", str(html), "--png", str(png), "--csv", str(csv)]) == 0  # model from the manifest
    first = capsys.readouterr().out
    model, tok, _ = load_model_folder(model_dir)
    handle = open_attribution(out)  # the CLI reads the rows' prob for the manifest's own model, as here
    rows_weights = handle.manifest["model"]["weights_digest"]
    expected = verify_summary(
        handle.summary(min_count=2), model, tok, top_k=3, max_examples=5, rows_weights=rows_weights
    )
    for cls in expected.classes:
        for row in expected.top(cls).itertuples():
            assert f"| {row.rank} | {row.item} |" in first and f"{row.effect:.4g}" in first
    assert "Verified: the top 3 candidates" in first
    table = pd.read_csv(csv)
    assert table["effect"].notna().sum() == len(expected.effects)
    page = html.read_text(encoding="utf-8")
    assert "effect (Δp)" in page and "95 % interval" in page and "<details" in page
    caches = sorted(out.glob(".verify-*.json"))
    assert len(caches) == 1
    stamp = caches[0].stat().st_mtime_ns
    assert main([*args, "--model", model_dir]) == 0 and capsys.readouterr().out.startswith(first.split("wrote")[0])
    assert sorted(out.glob(".verify-*.json")) == caches and caches[0].stat().st_mtime_ns == stamp  # read, not rewritten
    assert len(pd.read_parquet(out)) == 36  # the cache does not disturb the Parquet readers


def test_another_model_or_a_stray_option_is_refused(run, tmp_path, capsys):
    _, out = run
    other = S.save(tmp_path / "other", S.classifier(seed=7), S.wordpiece())
    with pytest.raises(SystemExit) as info:
        main(["summarize", str(out), "--verify", "--model", other])
    assert info.value.code == 2 and "weights differ" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["summarize", str(out), "--top-k", "3"])
    assert "go with --verify" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["summarize", str(out), "--verify", "--top-k", "0"])
    assert "--top-k must be at least 1" in capsys.readouterr().err
