"""Killing `normxlogit explain --html` while it writes: no partial page, the user's files untouched.

The command runs in a child process on a tiny model saved here. Its disk is made slow (the
stdlib's ``Path.write_bytes`` of our temporaries writes 128-byte chunks 20 ms apart and says
"WRITING" on stderr when it starts), so a kill lands in the middle of the write.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import transformers as T

from tests._support.saved import LABELS, cli_bert_config, cli_wordpiece, save
from tests.resources.test_cache import _user_folder, snapshot

ROOT = Path(__file__).resolve().parents[2]
PREFIX = ".captum_normxlogit-tmp-"
KILLS = 2  # random kill points (bounded: each costs one start of the command, ~5 s of imports)

_SLOW_CLI = r"""
import pathlib, sys, time
real = pathlib.Path.write_bytes
def slow(self, data):
    if not (self.name.startswith(".") and "tmp" in self.name):  # an atomic writer's hidden temporary
        return real(self, data)
    with open(self, "wb") as fh:
        for start in range(0, len(data), 128):
            fh.write(data[start:start + 128]); fh.flush()
            if start == 0:
                print("WRITING", file=sys.stderr, flush=True)
            time.sleep(0.02)
    return len(data)
pathlib.Path.write_bytes = slow
from captum_normxlogit.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = T.BertForSequenceClassification(cli_bert_config(id2label=LABELS)).eval()
    return save(tmp_path_factory.mktemp("fault-model") / "cls", model, cli_wordpiece())


def _start(model_dir, page: Path, tmp_path: Path) -> subprocess.Popen:
    args = [
        "explain",
        "a gorgeous , witty movie .",
        "--model",
        model_dir,
        "--methods",
        "normxlogit",
        "--colour",
        "never",
        "--html",
        str(page),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CAPTUM_NORMXLOGIT_CACHE": str(tmp_path / "cache")}
    return subprocess.Popen(
        [sys.executable, "-c", _SLOW_CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )


def _wait_for_write(proc: subprocess.Popen) -> None:
    assert proc.stderr is not None  # stderr=PIPE
    for line in proc.stderr:
        if line.strip() == b"WRITING":
            return
    raise AssertionError(f"the command ended (code {proc.wait()}) before writing")


def _finish(proc: subprocess.Popen) -> int:
    code = proc.wait(timeout=120)
    assert proc.stderr is not None
    proc.stderr.close()
    return code


def _complete(page: bytes) -> bool:
    return page.startswith(b"<!DOCTYPE html>") and page.rstrip().endswith(b"</body></html>")


def _check(folder: Path, before: dict, page: Path) -> list:
    r"""The user's entries are as they were, ``page`` is absent or complete; returns the extras."""
    after = snapshot(folder)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing of the user's changed
    if page.exists() and page.name not in before:
        assert _complete(page.read_bytes()), page.read_bytes()[-200:]
    extras = [k for k in after if k not in before and k != page.name]
    assert all(k.startswith(PREFIX) and "/" not in k for k in extras), extras  # only our own temporary
    return extras


def test_sigkill_in_the_middle_of_the_write_keeps_the_previous_page(model_dir, tmp_path):
    folder = _user_folder(tmp_path)
    page = folder / "page.html"
    page.write_bytes(b"<p>the previous, complete page</p>")
    before = snapshot(folder)
    proc = _start(model_dir, page, tmp_path)
    _wait_for_write(proc)
    partial = [p for p in folder.iterdir() if p.name.startswith(PREFIX)]
    assert len(partial) == 1 and partial[0].stat().st_size > 0  # part of the new page is on disk now
    proc.send_signal(signal.SIGKILL)
    assert _finish(proc) == -signal.SIGKILL
    extras = _check(folder, before, page)
    assert page.read_bytes() == b"<p>the previous, complete page</p>"
    assert len(extras) == 1  # a SIGKILL cannot be cleaned up after: our hidden temporary remains


def test_sigterm_in_the_middle_of_the_write_leaves_nothing_of_ours(model_dir, tmp_path):
    folder = _user_folder(tmp_path)
    page = folder / "page.html"
    before = snapshot(folder)
    proc = _start(model_dir, page, tmp_path)
    _wait_for_write(proc)
    proc.send_signal(signal.SIGTERM)
    assert _finish(proc) == 128 + signal.SIGTERM
    assert _check(folder, before, page) == [] and not page.exists()


def test_sigkill_at_random_points_never_leaves_a_partial_page(model_dir, tmp_path):
    write_seconds = 0.02 * (3_000 // 128 + 1)  # the page is about 3 kB: ~0.5 s of writing
    folder = _user_folder(tmp_path)
    page = folder / "page.html"
    before = snapshot(folder)
    rng = random.Random(10)
    outcomes = []
    for _ in range(KILLS):
        proc = _start(model_dir, page, tmp_path)
        _wait_for_write(proc)
        time.sleep(rng.uniform(0, 1.3 * write_seconds))  # mostly during the write, sometimes just after it
        proc.send_signal(signal.SIGKILL)
        code = _finish(proc)
        _check(folder, before, page)
        outcomes.append((code, page.exists()))
        page.unlink(missing_ok=True)
    # The seed puts the first kill inside the write; whatever the timing, every outcome was checked above.
    assert outcomes[0] == (-signal.SIGKILL, False), outcomes
