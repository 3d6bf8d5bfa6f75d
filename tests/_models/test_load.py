"""The one loader of a model folder (captum_normxlogit/_models/load.py), and that every command refuses alike."""

from __future__ import annotations

import pytest
import torch
import transformers as T

from captum_normxlogit._models.load import ModelFolderError, load_model_folder
from captum_normxlogit._models.tasks import CAUSAL_LM, MASKED_LM, SEQUENCE_CLASSIFICATION
from captum_normxlogit.cli import main
from tests._support import saved as S


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    no_tokenizer = root / "no-tokenizer"
    S.classifier().save_pretrained(no_tokenizer)
    token_cls = root / "token-cls"
    T.BertForTokenClassification(T.BertConfig(vocab_size=len(S.WORDS), **S.SMALL)).save_pretrained(token_cls)
    S.wordpiece().save_pretrained(token_cls)
    weights = root / "weights"
    S.save(weights, S.classifier(), S.wordpiece())
    (weights / "model.safetensors").write_bytes(b"\x00" * 64)
    config = root / "config"
    config.mkdir()
    (config / "config.json").write_text("{not json")
    return {
        "cls": S.save(root / "cls", S.classifier(), S.wordpiece()),
        "mlm": S.save(root / "mlm", S.masked_lm(), S.wordpiece()),
        "clm": S.save(root / "clm", S.causal_lm(S.bytelevel()), S.bytelevel()),
        "no-tokenizer": str(no_tokenizer),
        "token-cls": str(token_cls),
        "weights": str(weights),
        "config": str(config),
        "empty": str(root / "empty-dir"),
        "root": root,
        "file": str(config / "config.json"),
    }


@pytest.mark.parametrize("name, task", [("cls", SEQUENCE_CLASSIFICATION), ("mlm", MASKED_LM), ("clm", CAUSAL_LM)])
def test_a_saved_folder_loads_as_model_tokenizer_and_task(folders, name, task):
    model, tokenizer, found = load_model_folder(folders[name])
    assert found == task and not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert tokenizer is not None and len(tokenizer) > 0


@pytest.mark.parametrize(
    "name, message",
    [
        ("empty", "no such directory"),
        ("root", "no config.json there"),
        ("config", "config.json cannot be read"),
        ("token-cls", "config.architectures is ['BertForTokenClassification']"),
        ("no-tokenizer", "no tokenizer files there"),
        ("weights", "could not load it: the weights cannot be loaded"),
        ("file", "is a file, not a folder"),
    ],
)
def test_a_bad_folder_is_one_sentence_naming_it(folders, name, message):
    with pytest.raises(ModelFolderError) as info:
        load_model_folder(folders[name])
    text = str(info.value)
    assert text.startswith(f"{folders[name]}: ") and message in text and "\n" not in text


def test_check_model_takes_any_architecture_without_a_tokenizer(folders):
    model, tokenizer, task = load_model_folder(folders["token-cls"], tokenizer=False, any_architecture=True)
    assert isinstance(model, T.BertForTokenClassification) and tokenizer is None and task is None
    model, tokenizer, task = load_model_folder(folders["no-tokenizer"], tokenizer=False, any_architecture=True)
    assert tokenizer is None and task == SEQUENCE_CLASSIFICATION


def _stderr(capsys, *args):
    code: int | str | None  # main returns an int; SystemExit.code may be any of these
    try:
        code = main(list(args))
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr()


def test_every_command_refuses_a_folder_without_tokenizer_files_in_the_same_sentence(folders, capsys, tmp_path):
    # attribute-dataset explained such a folder as [UNK] (91 % of the tokens) with exit 0; explain refused it.
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "a gorgeous , witty movie ."}\n')
    out = tmp_path / "out"
    lines = []
    for args in (
        ["explain", "a movie .", "--model", folders["no-tokenizer"]],
        ["attribute-dataset", str(data), "--model", folders["no-tokenizer"], "--output", str(out), "--no-progress"],
    ):
        code, captured = _stderr(capsys, *args)
        err = captured.err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "[UNK]" not in captured.out, captured
        lines.append(err[0].split(": error: ", 1)[1])
    assert lines[0] == lines[1] and lines[0].startswith(f"--model {folders['no-tokenizer']}: no tokenizer files there")
    assert not out.exists()
