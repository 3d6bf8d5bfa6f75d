"""`normxlogit explain` on hostile text and broken inputs: visible placeholders, one clear error line.

The models are tiny and saved in a temporary folder; the byte-level tokenizer is trained here with
the `tokenizers` library (GPT-2 style, every byte in its alphabet), so any text can reach the views.
"""

import os
import pathlib
import re
import subprocess
import sys
from typing import Any

import pytest
import torch
import transformers as T

import captum_normxlogit._commands.explain.logic as explain_module
from captum_normxlogit.cli import main
from tests._support.saved import CLI_WORDS, LABELS, SMALL, cli_bert_config, cli_bytelevel, cli_wordpiece, save
from tests._support.tokenizers import bytelevel_bpe

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The characters a terminal or a browser would act on, or that would not show.
DANGEROUS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2028\u2029\u2060-\u2064\u2066-\u2069\ufeff]"
)
HOSTILE = (
    "The \x1b[2J\x1b]0;pwn\x07 capital \u202eof\u202c France \u2066is\u2069 <script>alert(1)</script> & "
    "pay\u200bpal\ufeff done"
)
SHOWN = ("⟨U+001B⟩[2J⟨U+001B⟩]0;pwn⟨U+0007⟩", "⟨U+202E⟩of⟨U+202C⟩", "⟨U+2066⟩is⟨U+2069⟩", "pay⟨U+200B⟩pal⟨U+FEFF⟩")
PLACEHOLDERS = ("⟨U+001B⟩", "⟨U+0007⟩", "⟨U+202E⟩", "⟨U+202C⟩", "⟨U+2066⟩", "⟨U+2069⟩", "⟨U+200B⟩", "⟨U+FEFF⟩")


def _hostile_bytelevel():
    """GPT-2 style byte-level BPE trained on the hostile text too, so whole hostile characters are tokens."""
    return bytelevel_bpe([HOSTILE, "The capital of France is Paris ."] * 20, vocab_size=420)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("safety-models")
    torch.manual_seed(0)
    bpe, plain = _hostile_bytelevel(), cli_bytelevel()
    config: dict[str, Any] = dict(num_key_value_heads=2, pad_token_id=0, **{**SMALL, "max_position_embeddings": 256})
    causal = T.LlamaForCausalLM(T.LlamaConfig(vocab_size=len(bpe), **config)).eval()
    # A tokenizer that never saw these characters splits each into its bytes (shown as �, never raw).
    split = T.LlamaForCausalLM(T.LlamaConfig(vocab_size=len(plain), **config)).eval()
    classifier = T.BertForSequenceClassification(cli_bert_config(id2label=LABELS)).eval()
    no_tokenizer = root / "no-tokenizer"
    classifier.save_pretrained(no_tokenizer)
    return {
        "causal": save(root / "clm", causal, bpe),
        "split": save(root / "split", split, plain),
        "classifier": save(root / "cls", classifier, cli_wordpiece()),
        "no-tokenizer": str(no_tokenizer),
        "root": root,
    }


def _explain(capsys, *args):
    try:
        code = main(["explain", *args])
    except SystemExit as stop:
        code = stop.code  # type: ignore[assignment]  # main exits with an int code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("colour", ["never", "always"])
def test_hostile_text_shows_placeholders_in_the_terminal_and_the_page(models, capsys, tmp_path, colour):
    page = tmp_path / "page.html"
    code, out, err = _explain(
        capsys,
        HOSTILE,
        "--model",
        models["causal"],
        "--methods",
        "normxlogit,saliency",
        "--html",
        str(page),
        "--colour",
        colour,
    )
    assert code == 0, err
    shown = re.sub(r"\x1b\[[0-9;]*m", "", out)  # rich's own colour codes: the only escapes allowed
    assert not DANGEROUS.search(shown + err), repr(shown)
    assert all(text in shown for text in PLACEHOLDERS) and "script" in shown
    body = page.read_text(encoding="utf-8")
    assert not DANGEROUS.search(body)
    assert "<script>" not in body and "&lt;" in body and "&amp;" in body
    assert all(text in body for text in PLACEHOLDERS)
    # The title repeats the text: visible and escaped too.
    found = re.search(r"<title>(.*?)</title>", body)
    assert found is not None
    title = found.group(1)
    assert title.startswith("normxlogit explain: The ⟨U+001B⟩[2J⟨U+001B⟩]0;pwn⟨U+0007⟩ capital ⟨U+202E⟩of")


@pytest.mark.parametrize("model", ["causal", "split"])
def test_merged_words_keep_the_placeholders(models, capsys, model):
    code, out, _ = _explain(
        capsys, HOSTILE, "--model", models[model], "--methods", "normxlogit", "--words", "--colour", "never"
    )
    assert code == 0
    row = next(line for line in out.splitlines() if line.strip().startswith("NormXLogit"))
    words = [w.rsplit("[", 1)[0] for w in row.split()[1:]]
    assert all(text in words for text in SHOWN), words  # bytes split over tokens decode within a word
    assert not DANGEROUS.search(out)


def test_characters_split_into_bytes_show_as_replacement_marks(models, capsys):
    code, out, _ = _explain(capsys, HOSTILE, "--model", models["split"], "--methods", "normxlogit", "--colour", "never")
    assert code == 0 and not DANGEROUS.search(out)
    assert "⟨U+001B⟩" in out and "\ufffd" in out  # one-byte ESC whole, a 3-byte bidi mark as its pieces


def test_undecodable_command_line_bytes_are_one_clear_line(models, capsys, tmp_path):
    # Python hands undecodable argv bytes over as lone surrogates, which no tokenizer takes.
    page = tmp_path / "p.html"
    code, out, err = _explain(
        capsys,
        "The capital \udcff of",
        "--model",
        models["causal"],
        "--methods",
        "normxlogit",
        "--html",
        str(page),
        "--colour",
        "never",
    )
    _one_line_error(code, out, err, "TEXT is not valid text")
    assert "⟨U+DCFF⟩" in err and not page.exists()


def _one_line_error(code, out, err, message):
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and message in lines[0], err
    assert lines[0].startswith("normxlogit explain: error: ")


def test_a_model_folder_without_tokenizer_files_is_refused(models, capsys, tmp_path):
    page = tmp_path / "never.html"
    code, out, err = _explain(capsys, "a movie .", "--model", models["no-tokenizer"], "--html", str(page))
    _one_line_error(code, out, err, "no tokenizer files there")
    assert "tokenizer.save_pretrained()" in err and not page.exists() and "[UNK]" not in out


def test_text_the_tokenizer_cannot_read_is_refused(models, capsys):
    code, out, err = _explain(capsys, "zzz qqq", "--model", models["classifier"])  # every word is [UNK]
    _one_line_error(code, out, err, "every token of TEXT is the unknown token '[UNK]'")


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "config.json cannot be read"),
        ('{"architectures": ["BertForSequenceClassification"]}', "config.json cannot be read"),
        ('["a", "list"]', "config.json cannot be read"),
    ],
)
def test_a_corrupt_config_is_one_clear_line(models, capsys, tmp_path, content, message):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text(content)
    cli_wordpiece().save_pretrained(folder)
    code, out, err = _explain(capsys, "a movie .", "--model", str(folder))
    _one_line_error(code, out, err, message)


def test_corrupt_weights_are_one_clear_line(models, capsys, tmp_path):
    folder = tmp_path / "weights"
    save(folder, T.BertForSequenceClassification(T.BertConfig(vocab_size=len(CLI_WORDS), **SMALL)), cli_wordpiece())
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    capsys.readouterr()  # the saving's own progress bar
    code, out, err = _explain(capsys, "a movie .", "--model", str(folder))
    _one_line_error(code, out, err, "could not load it")


@pytest.mark.parametrize(
    "where, message",
    [
        ("{file}/page.html", "is a file, not a folder"),
        ("{file}/deeper/page.html", "is a file, not a folder"),
        ("{dir}/" + "x" * 300 + ".html", "too long"),
        ("/proc/page.html", "cannot write /proc/page"),
    ],
)
@pytest.mark.parametrize("option", ["--html", "--png"])
def test_an_unwritable_output_path_is_refused_before_any_computation(
    models, capsys, tmp_path, monkeypatch, where, message, option
):
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the output path was checked")

    monkeypatch.setattr(explain_module, "load_model", never)
    path = where.format(file=blocker, dir=tmp_path)
    code, out, err = _explain(capsys, "a movie .", "--model", models["classifier"], option, path)
    _one_line_error(code, out, err, message)
    assert blocker.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_write_that_fails_after_the_check_is_one_clear_line(models, capsys, tmp_path, monkeypatch):
    from captum_normxlogit._utils import atomic

    def full(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.Path, "write_bytes", full)
    page = tmp_path / "page.html"
    code, out, err = _explain(
        capsys, "a movie .", "--model", models["classifier"], "--methods", "normxlogit", "--html", str(page)
    )
    # a failed run (exit 1), not a bad request: the one line of the shared writers' WriteError
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("normxlogit explain: error: ")
    assert f"cannot write {page}: the disk is full; nothing was written there" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_the_installed_command_exits_non_zero_with_one_line(models, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    result = subprocess.run(
        [sys.executable, "-m", "captum_normxlogit.cli", "explain", "a movie .", "--model", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "config.json cannot be read" in result.stderr


def test_ctrl_c_during_the_write_leaves_nothing_and_exits_130(models, capsys, tmp_path, monkeypatch):
    from captum_normxlogit._utils import atomic

    real = atomic.Path.write_bytes

    def interrupted(self, data):
        real(self, data[: len(data) // 2])  # half the page is on disk...
        raise KeyboardInterrupt  # ...when the user presses Ctrl-C

    monkeypatch.setattr(atomic.Path, "write_bytes", interrupted)
    (tmp_path / "mine.txt").write_text("keep")
    code, out, err = _explain(
        capsys,
        "a movie .",
        "--model",
        models["classifier"],
        "--methods",
        "normxlogit",
        "--html",
        str(tmp_path / "page.html"),
    )
    assert code == 130 and err.strip() == "normxlogit: interrupted; nothing half-written was left"
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
