"""The one input-length rule (`_utils/model_parts.input_limit`), which explain and the dataset runs both read."""

import types

import pytest
import torch.nn as nn

from captum_normxlogit._utils.model_parts import input_limit, position_limit


def _model(**config):
    model = nn.Linear(1, 1)
    model.config = types.SimpleNamespace(**config)  # type: ignore[assignment]  # a stand-in config
    return model


@pytest.mark.parametrize(
    "config, tokenizer_limit, max_length, want",
    [
        (dict(max_position_embeddings=512), 128, None, 128),  # the tokenizer's limit
        (dict(max_position_embeddings=64), 128, None, 64),  # the position table
        (dict(n_positions=1024), int(1e30), None, 1024),  # GPT-2's name; the tokenizer's "no limit" sentinel
        (dict(max_position_embeddings=512), 128, 16, 16),  # the caller's own limit
        (dict(), None, None, 1_000_000),  # nothing known: the sentinel
    ],
)
def test_the_least_of_tokenizer_position_table_and_caller(config, tokenizer_limit, max_length, want):
    tokenizer = types.SimpleNamespace(model_max_length=tokenizer_limit)
    assert input_limit(_model(**config), tokenizer, max_length) == want


def test_the_position_table_is_found_under_each_name_and_a_bad_limit_refused():
    assert position_limit(_model(n_ctx=300)) == ("n_ctx", 300) and position_limit(_model()) is None
    with pytest.raises(ValueError, match="max_length must be at least 1, got 0"):
        input_limit(_model(), None, 0)


def test_explain_and_the_dataset_read_the_same_limit():
    from captum_normxlogit._commands.explain.logic import LoadedModel
    from captum_normxlogit.dataset._explainer import RowExplainer
    from tests._support import saved as S

    model, tokenizer = S.classifier(), S.wordpiece()
    explainer = RowExplainer(
        model,
        tokenizer,
        text_column="text",
        pair_column=None,
        label_column=None,
        target=None,
        foil=None,
        layers=None,
        max_length=None,
        truncation=False,
    )
    assert LoadedModel(model, tokenizer, "sequence_classification", "m").max_tokens == explainer.limit == 24
