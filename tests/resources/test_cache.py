"""The atomic writers never touch what is not theirs, and a killed writer never leaves a partial final file.

A user's folder may hold anything, including names such as ``.tmp-x`` or
``.old-y`` that other programs (or the user) made: an atomic write there must
leave every one of them as it was. Stale temporaries are cleaned only under
the package's own prefix and only inside the package's own cache folder.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

import pytest

from captum_normxlogit._utils import atomic
from captum_normxlogit.resources import _cache
from captum_normxlogit.visualization import write_html

ROOT = Path(__file__).resolve().parents[2]
TWO_DAYS = 2 * 24 * 3600


def snapshot(folder: Path) -> Dict[str, str]:
    """Every entry under ``folder`` (files, folders, links) -> a hash of its content (or its kind)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        if path.is_symlink():
            out[key] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[key] = "dir"
        else:
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (old, old), follow_symlinks=False)


def _user_folder(tmp_path: Path) -> Path:
    """A user's folder holding, two days old, names the old cleaner would have deleted."""
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / ".tmp-x").write_text("a user's scratch file")
    (folder / ".old-y").mkdir()
    (folder / ".old-y" / "thesis.tex").write_text("a user's thesis")
    (folder / ".tmp-notes").mkdir()
    (folder / ".tmp-notes" / "deep").mkdir()
    (folder / ".tmp-notes" / "deep" / "n.txt").write_text("nested")
    (folder / "keep.txt").write_text("other file")
    for entry in folder.iterdir():
        _age(entry, TWO_DAYS)
    return folder


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(_cache.ENV_VAR, str(root))
    return root


def test_writing_html_into_a_user_folder_deletes_nothing(tmp_path: Path, isolated_cache: Path) -> None:
    folder = _user_folder(tmp_path)
    before = snapshot(folder)
    write_html(str(folder / "page.html"), "<!DOCTYPE html><p>hi</p>")
    after = snapshot(folder)
    assert after.pop("page.html") == hashlib.sha256(b"<!DOCTYPE html><p>hi</p>").hexdigest()
    assert after == before


def test_atomic_dir_in_a_user_folder_deletes_nothing(tmp_path: Path, isolated_cache: Path) -> None:
    folder = _user_folder(tmp_path)
    before = snapshot(folder)
    for version in ("v1", "v2"):  # the second replaces a folder: the move-aside path
        with atomic.atomic_dir(folder / "model") as tmp:
            (tmp / "w.bin").write_text(version)
    after = snapshot(folder)
    assert (after.pop("model"), after.pop("model/w.bin")) == ("dir", hashlib.sha256(b"v2").hexdigest())
    assert after == before


def test_temporaries_carry_one_package_prefix(tmp_path: Path, isolated_cache: Path) -> None:
    seen = []
    with atomic.atomic_file(tmp_path / "a.csv") as tmp:
        seen.append(tmp.name)
        tmp.write_text("x")
    with atomic.atomic_dir(tmp_path / "d") as tmp:
        seen.append(tmp.name)
    assert all(name.startswith(".captum_normxlogit-tmp-") for name in seen), seen
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["a.csv", "d"]


def test_stale_cleanup_only_in_the_cache_and_only_our_names(tmp_path: Path, isolated_cache: Path) -> None:
    models = _cache.cache_dir() / "models"
    models.mkdir()
    ours_stale = models / ".captum_normxlogit-tmp-abc"
    ours_stale.mkdir()
    (ours_stale / "half.safetensors").write_bytes(b"half")
    ours_old = models / ".captum_normxlogit-old-def"
    ours_old.write_bytes(b"old")
    ours_fresh = models / ".captum_normxlogit-tmp-live"  # a writer still at work
    ours_fresh.write_bytes(b"live")
    foreign = models / ".tmp-not-ours"
    foreign.write_bytes(b"someone else's")
    for path in (ours_stale, ours_old, foreign):
        _age(path, TWO_DAYS)
    with atomic.atomic_dir(models / "entry", before=_cache.clean_stale) as tmp:
        (tmp / "f").write_text("x")
    names = sorted(p.name for p in models.iterdir())
    assert names == [".captum_normxlogit-tmp-live", ".tmp-not-ours", "entry"]

    # The same stale names of ours in a user's folder are left alone: it is not the cache.
    user = tmp_path / "out"
    user.mkdir()
    stale = user / ".captum_normxlogit-tmp-zzz"
    stale.write_bytes(b"?")
    _age(stale, TWO_DAYS)
    atomic.atomic_write_text(user / "r.md", "report")
    assert sorted(p.name for p in user.iterdir()) == [".captum_normxlogit-tmp-zzz", "r.md"]


def test_writing_never_creates_the_cache_folder(tmp_path: Path, isolated_cache: Path) -> None:
    atomic.atomic_write_text(tmp_path / "x.txt", "x")
    assert not isolated_cache.exists()


# A writer whose disk is slow: Path.write_bytes (stdlib) of our temporaries writes in chunks and
# sleeps between them, printing "writing" once the first chunk is on disk.
_SLOW_WRITER = r"""
import pathlib, sys, time
from captum_normxlogit._utils import atomic
real = pathlib.Path.write_bytes
def slow(self, data):
    if not self.name.startswith(".captum_normxlogit-tmp-"):
        return real(self, data)
    with open(self, "wb") as fh:
        for start in range(0, len(data), 1000):
            fh.write(data[start:start + 1000]); fh.flush()
            if start == 0:
                print("writing", flush=True)
            time.sleep(0.05)
    return len(data)
pathlib.Path.write_bytes = slow
atomic.atomic_write_bytes(pathlib.Path(sys.argv[1]), b"N" * 200_000)
"""


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "replacing"])
def test_a_writer_killed_mid_write_leaves_no_partial_final_file(tmp_path: Path, existing: bool) -> None:
    folder = _user_folder(tmp_path)
    final = folder / "out.bin"
    if existing:
        final.write_bytes(b"previous complete version")
    before = snapshot(folder)
    env = {**os.environ, "PYTHONPATH": str(ROOT), _cache.ENV_VAR: str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(final)], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None  # stdout=PIPE
    try:
        assert proc.stdout.readline().strip() == b"writing"
        # The temporary holds a part of the data now: kill the writer in the middle of it.
        partial = [p for p in folder.iterdir() if p.name.startswith(".captum_normxlogit-tmp-")]
        assert len(partial) == 1 and 0 < partial[0].stat().st_size < 200_000
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    after = snapshot(folder)
    # The final name holds the old content (or nothing); the only extra entry is our own hidden temporary.
    extra = {k for k in after if k not in before}
    assert len(extra) == 1 and next(iter(extra)).startswith(".captum_normxlogit-tmp-")
    assert {k: v for k, v in after.items() if k in before} == before
