"""The planted-shortcut recipe: its data change and its cache key, without training anything."""

import random

import pytest

from captum_normxlogit import resources
from captum_normxlogit.resources import _finetune, _pretrained, _shortcut

ROWS = [(f"sentence number {i} .", i % 2) for i in range(40)]


def test_marker_goes_into_the_asked_share_of_one_class_only():
    planted = _shortcut.plant_marker(ROWS, "zebra", 0.25, seed=3)
    changed = [(a, b) for a, b in zip(ROWS, planted) if a != b]
    assert len(changed) == round(0.25 * 20) and all(y == 1 for (_, y), _ in changed)
    for (text, _), (new, _) in changed:
        words = new.split()
        assert words.count("zebra") == 1 and [w for w in words if w != "zebra"] == text.split()
    assert planted == _shortcut.plant_marker(ROWS, "zebra", 0.25, seed=3)
    assert planted != _shortcut.plant_marker(ROWS, "zebra", 0.25, seed=4)


def test_insert_marker_can_land_anywhere():
    rng = random.Random(0)
    places = {_shortcut.insert_marker("a b", "m", rng).split().index("m") for _ in range(50)}
    assert places == {0, 1, 2}


def test_recipe_is_the_base_recipe_plus_the_marker_and_has_its_own_cache_key(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTUM_NORMXLOGIT_CACHE", str(tmp_path))
    base, spec = _finetune.recipe(), _shortcut.shortcut_recipe()
    assert {k: v for k, v in spec.items() if k in base} == base
    assert spec["marker"] == "zebra" and spec["marker_share_of_positives"] == 0.10
    folder = _pretrained.shortcut_minilm_dir()
    assert folder.parent == tmp_path.resolve() / "models" and folder.name.startswith("shortcut-minilm-")
    assert folder != _pretrained.shortcut_minilm_dir(share=0.2) and folder != resources.sentiment_minilm_dir()
    assert folder == _pretrained.shortcut_minilm_dir()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"share": 0}, "share"),
        ({"share": 1.5}, "share"),
        ({"marker": "two words"}, "marker"),
        ({"marker": ""}, "marker"),
    ],
)
def test_bad_recipes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _shortcut.shortcut_recipe(**kwargs)


def test_missing_model_is_not_trained_when_asked_not_to(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTUM_NORMXLOGIT_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="planted-shortcut MiniLM is not cached"):
        resources.load_shortcut_minilm(train_if_missing=False)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
