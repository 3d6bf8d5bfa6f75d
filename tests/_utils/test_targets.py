"""The one target resolver (`_utils/targets.py`): explain and attribute-dataset read and refuse a target alike."""

import json

import pytest

from captum_normxlogit._utils.targets import TargetError, label_index, one_token
from captum_normxlogit.cli import main
from tests._support import saved as S


@pytest.mark.parametrize("value, want", [(2, 2), ("2", 2), ("POSITIVE", 2), ("positive", 2), ("Neutral", 1)])
def test_a_class_from_an_index_a_digit_string_or_a_label_name(value, want):
    assert label_index(S.LABELS, value, "target") == want


@pytest.mark.parametrize(
    "value, message",
    [
        (3, "target 3 out of range: the model has classes 0..2"),
        (True, "is a bool"),
        (
            "GREAT",
            "'GREAT' is not a class of this model; its labels (config.id2label) are NEGATIVE, NEUTRAL, POSITIVE, "
            "or their indices 0..2.",
        ),
    ],
)
def test_a_bad_class_is_one_sentence(value, message):
    with pytest.raises(TargetError) as info:
        label_index(S.LABELS, value, "target")
    assert message in str(info.value)


def test_a_token_is_one_token():
    tok = S.wordpiece()
    assert one_token(tok, len(tok), "movie", "target") == tok.convert_tokens_to_ids("movie")
    with pytest.raises(TargetError, match=r"'gorgeous movie' is 2 tokens .* exactly one token"):
        one_token(tok, len(tok), "gorgeous movie", "target")


def test_explain_and_attribute_dataset_refuse_a_bad_label_in_the_same_words(tmp_path, capsys):
    folder = S.save(tmp_path / "cls", S.classifier(), S.wordpiece())
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"text": "a gorgeous movie ."}) + "\n")
    capsys.readouterr()  # the saving's own progress bar
    sentences = []
    for args in (
        ["explain", "a movie .", "--model", folder, "--target", "GREAT"],
        [
            "attribute-dataset",
            str(data),
            "--model",
            folder,
            "--output",
            str(tmp_path / "o"),
            "--target",
            "GREAT",
            "--no-progress",
        ],
    ):
        code: int | str | None  # main returns an int; SystemExit.code may be any of these
        try:
            code = main(args)
        except SystemExit as stop:
            code = stop.code
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        sentences.append(err.split("'GREAT'", 1)[1])
    assert sentences[0] == sentences[1]
    assert not (tmp_path / "o").exists()
