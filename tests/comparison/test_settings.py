"""compare()'s settings groups (comparison/settings.py): old keywords and objects give the same result."""

from typing import Any

import pandas as pd
import pytest
import torch

import captum_normxlogit
from captum_normxlogit import MethodSettings, MetricSettings, NormXLogit, Perturbation, RunSettings, compare
from captum_normxlogit.metrics import ERASER_RATIOS
from tests._support.tiny import bert_classifier
from tests.comparison.test_compare import CLS, MASK, PAD, bag_of_words

TIMES = ["seconds", "ms_per_example", "peak_mib"]  # measured, never equal twice


@pytest.fixture(scope="module")
def bert():
    return bert_classifier(num_labels=2)


def _data():
    ids = torch.tensor([[CLS, 3, 4, 5, 6], [CLS, 4, 6, PAD, PAD], [CLS, 6, 5, 4, PAD]])
    return ids, (ids != PAD).long()


def _same(a, b):
    pd.testing.assert_frame_equal(a.table.drop(columns=TIMES), b.table.drop(columns=TIMES))
    pd.testing.assert_frame_equal(a.curves, b.curves)
    assert {k: v for k, v in a.settings.items()} == {k: v for k, v in b.settings.items()}


def test_old_keywords_and_settings_objects_give_the_same_result(bert):
    ids, mask = _data()
    nx = NormXLogit(bert)
    common: dict[str, Any] = dict(methods=["normxlogit", "layer_ig", "random"], labels=torch.tensor([1, 0, 1]))
    old = compare(
        nx,
        ids,
        mask,
        **common,
        special_token_ids=(CLS,),
        removal=MASK,
        length="removable",
        pad_token_id=PAD,
        baseline_keep_ids=(CLS,),
        ig_steps=3,
        internal_batch_size=3,
        reduction="sum",
        seed=5,
        ratios=(0.0, 0.5, 1.0),
        eraser_ratios=ERASER_RATIOS[:2],
        forward_batch_size=7,
        batch_size=2,
        progress=False,
    )
    new = compare(
        nx,
        ids,
        mask,
        **common,
        perturbation=Perturbation(MASK, (CLS,), length="removable", pad_token_id=PAD),
        method_settings=MethodSettings(
            ig_steps=3, internal_batch_size=3, reduction="sum", seed=5, baseline_keep_ids=(CLS,)
        ),
        metrics=MetricSettings(ratios=(0.0, 0.5, 1.0), eraser_ratios=ERASER_RATIOS[:2], forward_batch_size=7),
        run=RunSettings(batch_size=2, progress=False),
    )
    _same(old, new)
    assert new.settings["ig_steps"] == 3 and new.settings["batch_size"] == 2 and new.settings["length"] == "removable"


def test_defaults_come_from_the_groups(bert):
    ids, mask = _data()
    nx = NormXLogit(bert)
    plain = compare(
        nx,
        ids,
        mask,
        forward_func=bag_of_words,
        methods=["normxlogit", "random"],
        special_token_ids=(CLS,),
        removal=MASK,
        progress=False,
    )
    grouped = compare(
        nx,
        ids,
        mask,
        forward_func=bag_of_words,
        methods=["normxlogit", "random"],
        perturbation=Perturbation(MASK, (CLS,)),
        method_settings=MethodSettings(),
        metrics=MetricSettings(),
        run=RunSettings(progress=False),
    )
    _same(plain, grouped)
    assert plain.settings["ig_steps"] == MethodSettings.ig_steps == captum_normxlogit.methods.IG.defaults["ig_steps"]
    assert plain.settings["seed"] == MethodSettings.seed == captum_normxlogit.methods.RANDOM.defaults["seed"]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            dict(run=RunSettings(progress=False), batch_size=4),
            ValueError,
            r"compare: batch_size given twice, as keyword and in run=RunSettings\(\.\.\.\); pass each setting once",
        ),
        (
            dict(method_settings=MetricSettings()),
            TypeError,
            r"compare: method_settings= takes a MethodSettings, got MetricSettings \(ig_steps, internal_batch_size",
        ),
        (
            dict(perturbation=None, special_token_ids=None, removal=MASK),
            ValueError,
            "special_token_ids must be a sequence",
        ),
    ],
)
def test_a_bad_grouping_is_one_clear_error(bert, kwargs, error, message):
    ids, mask = _data()
    kwargs = {"perturbation": Perturbation(MASK, (CLS,)), **kwargs}
    with pytest.raises(error, match=message):
        compare(NormXLogit(bert), ids, mask, forward_func=bag_of_words, methods=["random"], **kwargs)


def test_required_settings_given_neither_way_are_named(bert):
    ids, mask = _data()
    with pytest.raises(
        TypeError,
        match=r"compare needs removal and special_token_ids: pass them as keywords or "
        r"perturbation=Perturbation\(removal=\.\.\., special_token_ids=\.\.\.\)",
    ):
        compare(NormXLogit(bert), ids, mask, forward_func=bag_of_words, methods=["random"])
