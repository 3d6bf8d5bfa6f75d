"""faithfulness_curves' settings groups (metrics/settings.py): the same curves either way, clear errors otherwise."""

from typing import Any

import pytest
import torch
from torch import Tensor

from captum_normxlogit.metrics import (
    ERASER_RATIOS,
    CurveSettings,
    Perturbation,
    comprehensiveness,
    faithfulness_curves,
)
from tests.metrics.test_faithfulness import CLS, MASK, PAD, BagOfWords

IDS = torch.tensor([[CLS, 3, 4, 5, 6], [CLS, 4, 6, PAD, PAD]])
MASK_ = (IDS != PAD).long()
SCORES: dict[str, Tensor | tuple[Tensor, ...]] = {
    "good": torch.tensor([[9.0, 4, 3, 2, 1], [9.0, 3, 1, 0, 0]]),
    "reversed": torch.tensor([[9.0, 1, 2, 3, 4], [9.0, 1, 3, 0, 0]]),
}


def _same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].keys() == b[name].keys()
        for kind in a[name]:
            x, y = a[name][kind], b[name][kind]
            assert x.ratios == y.ratios
            torch.testing.assert_close(x.drop, y.drop, rtol=0, atol=0)
            torch.testing.assert_close(x.removed, y.removed, rtol=0, atol=0)
            assert (x.correct is None) == (y.correct is None)
            if x.correct is not None:
                assert torch.equal(x.correct, y.correct)


@pytest.mark.parametrize("removal, length", [(MASK, "all"), ("delete", "removable")])
def test_old_keywords_and_settings_objects_give_the_same_curves(removal, length):
    common: dict[str, Any] = dict(attention_mask=MASK_, labels=torch.tensor([1, 0]))
    old = faithfulness_curves(
        BagOfWords(),
        IDS,
        SCORES,
        special_token_ids=(CLS,),
        removal=removal,
        length=length,
        pad_token_id=PAD,
        ratios=ERASER_RATIOS,
        kinds=("sufficiency",),
        batch_size=3,
        **common,
    )
    new = faithfulness_curves(
        BagOfWords(),
        IDS,
        SCORES,
        **common,
        perturbation=Perturbation(removal, (CLS,), length=length, pad_token_id=PAD),
        curves=CurveSettings(ratios=ERASER_RATIOS, kinds=("sufficiency",), batch_size=3),
    )
    _same(old, new)
    # a group for one half, keywords for the other
    mixed = faithfulness_curves(
        BagOfWords(),
        IDS,
        SCORES,
        **common,
        special_token_ids=(CLS,),
        removal=removal,
        length=length,
        pad_token_id=PAD,
        curves=CurveSettings(ratios=ERASER_RATIOS, kinds=("sufficiency",), batch_size=3),
    )
    _same(old, mixed)


def test_defaults_are_the_groups_defaults():
    plain = faithfulness_curves(BagOfWords(), IDS, SCORES, attention_mask=MASK_, special_token_ids=(CLS,), removal=MASK)
    grouped = faithfulness_curves(
        BagOfWords(), IDS, SCORES, attention_mask=MASK_, perturbation=Perturbation(MASK, (CLS,)), curves=CurveSettings()
    )
    _same(plain, grouped)


def test_comprehensiveness_takes_the_curve_settings_too():
    old = comprehensiveness(
        BagOfWords(),
        IDS,
        SCORES["good"],
        special_token_ids=(CLS,),
        removal=MASK,
        attention_mask=MASK_,
        ratios=ERASER_RATIOS,
    )
    new = comprehensiveness(
        BagOfWords(),
        IDS,
        SCORES["good"],
        special_token_ids=(CLS,),
        removal=MASK,
        attention_mask=MASK_,
        curves=CurveSettings(ratios=ERASER_RATIOS, kinds=("sufficiency",)),
    )
    assert new.kind == "comprehensiveness"
    torch.testing.assert_close(old.drop, new.drop, rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            dict(perturbation=Perturbation(MASK, (CLS,)), removal=MASK),
            ValueError,
            r"faithfulness_curves: removal given twice, as keyword and in "
            r"perturbation=Perturbation\(\.\.\.\); pass each",
        ),
        (
            dict(perturbation=Perturbation(MASK, (CLS,)), curves=CurveSettings(), batch_size=8, ratios=(0.5,)),
            ValueError,
            r"batch_size, ratios given twice, as keywords and in curves=CurveSettings",
        ),
        (
            dict(perturbation=CurveSettings()),
            TypeError,
            r"perturbation= takes a Perturbation, got CurveSettings "
            r"\(removal, special_token_ids, length, pad_token_id go",
        ),
        (
            dict(perturbation=Perturbation(MASK, (CLS,)), curves={"batch_size": 8}),
            TypeError,
            r"curves= takes a CurveSettings, got dict",
        ),
        (
            dict(),
            TypeError,
            r"faithfulness_curves needs removal and special_token_ids: pass them as keywords or "
            r"perturbation=Perturbation\(removal=\.\.\., special_token_ids=\.\.\.\)",
        ),
        (dict(removal=MASK), TypeError, r"needs special_token_ids: pass it as keywords"),
    ],
)
def test_a_bad_grouping_is_one_clear_error_before_the_model_runs(kwargs, error, message):
    forward = BagOfWords()
    with pytest.raises(error, match=message):
        faithfulness_curves(forward, IDS, SCORES, attention_mask=MASK_, **kwargs)
    assert forward.calls == 0


def test_a_group_holds_only_its_own_settings():
    with pytest.raises(TypeError, match="ratios"):
        Perturbation(MASK, (CLS,), ratios=(0.5,))  # type: ignore[call-arg]
    with pytest.raises(Exception, match="cannot assign"):
        CurveSettings().batch_size = 3  # type: ignore[misc]  # frozen: the assignment must fail
