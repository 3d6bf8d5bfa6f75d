r"""
Atomic file and folder writing: a file or folder under its final name is
always complete.

Every entry is written under a hidden ``.captum_normxlogit-tmp-<random>`` name
in the same folder and renamed into place with :func:`os.replace` only once it
is complete. These writers create nothing besides their own uniquely named
temporary (and, when a folder is replaced, a ``.captum_normxlogit-old-<random>``
one it removes itself) and the final entry, and they delete nothing else: a
user's folder may hold anything. A SIGKILL cannot be cleaned up after, so a
killed write may leave its temporary behind (:func:`is_own_temporary` names
them); only the package's cache removes such leftovers, in its own folders
(:mod:`captum_normxlogit.resources._cache`).

Used by every file the package writes: the cache, HTML pages, reports,
dataset shards and the benchmarks' result files. A write that fails (a full
disk, a read-only or special folder, a FIFO or device where the file should
go) raises :class:`WriteError`, one sentence naming the final path, and leaves
nothing: neither the temporary nor a folder the writer created for it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Optional

__all__ = [
    "OLD_PREFIX",
    "TMP_PREFIX",
    "WriteError",
    "atomic_dir",
    "atomic_file",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_writable",
    "is_own_temporary",
    "os_error_reason",
    "remove_entry",
    "write_error",
]

# One unambiguous, package-specific prefix for everything these writers create besides the final entry.
_PREFIX = ".captum_normxlogit-"
TMP_PREFIX = _PREFIX + "tmp-"
OLD_PREFIX = _PREFIX + "old-"


#: errno -> plain words; the writers translate only these (an error without an errno, e.g. a failed
#: download inside a cache write, passes through unchanged).
_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file would exceed the size this process may write (a file-size limit, `ulimit -f`)",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "the system does not allow files there",
    errno.ENOENT: "that folder does not exist and cannot be created",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the name is too long for the file system",
    errno.EIO: "an input/output error",
    errno.EEXIST: "something else stands there",
}
_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class WriteError(OSError):
    r"""A file or folder could not be written. ``str()`` is one sentence naming the
    final path, the reason and what to do; ``filename`` is the final path and
    ``errno`` the system's. Nothing was left under the final name or beside it."""

    def __str__(self) -> str:
        return str(self.strerror)


def os_error_reason(error: OSError) -> str:
    r"""The plain words for ``error``'s errno (its own text when the errno has none)."""
    if error.errno in _REASONS:
        return _REASONS[error.errno]
    text = error.strerror or str(error) or type(error).__name__
    return " ".join(str(text).split())


def write_error(final: Path, error: OSError, reason: str = "") -> WriteError:
    r"""The :class:`WriteError` for a failed write of ``final``.

    Args:
        final (pathlib.Path): The file or folder that was to be written.
        error (OSError): What the system raised.
        reason (str, optional): Words replacing the errno's. Default: ``""``

    Returns:
        WriteError
    """
    reason = reason or os_error_reason(error)
    advice = (
        "free some space (or raise the limit) and run again"
        if error.errno in _SPACE
        else "choose a path in a folder you can write to"
    )
    message = f"cannot write {final}: {reason}; nothing was written there. To fix it: {advice}."
    return WriteError(error.errno or errno.EIO, message, str(final))


def _special(final: Path) -> bool:
    r"""Whether ``final`` exists and is neither a regular file nor a folder (a FIFO, a device, a
    socket): renaming a file over it would replace e.g. ``/dev/null`` for every user of it."""
    return final.exists() and not final.is_file() and not final.is_dir()


def _make_parents(folder: Path) -> list:
    r"""``mkdir -p folder``; returns the folders it created, outermost first (removed again on failure)."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
    return list(reversed(missing))


def _remove_created(created: list) -> None:
    for path in reversed(created):
        with contextlib.suppress(OSError):
            path.rmdir()  # only if still empty


def _check_target(final: Path, folder_wanted: bool) -> None:
    if _special(final):
        raise write_error(final, OSError(errno.EEXIST, "special"), "it is a FIFO, device or socket, not a regular file")
    if not folder_wanted and final.is_dir() and not final.is_symlink():
        raise write_error(final, OSError(errno.EISDIR, "folder"), "it is a folder; pass a file name")
    if folder_wanted and final.is_file():
        raise write_error(final, OSError(errno.ENOTDIR, "file"), "a file stands there; pass a folder name")


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


def remove_entry(path: Path) -> None:
    r"""Removes a file, link or folder tree; a missing one is fine.

    Args:
        path (pathlib.Path): the entry to remove.
    """
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def is_own_temporary(name: str) -> bool:
    r"""Whether a file name is one of the temporaries these writers create (``.captum_normxlogit-tmp-*`` /
    ``-old-*``): what a killed write may leave beside its final entry."""
    return name.startswith((TMP_PREFIX, OLD_PREFIX))


def _replace(tmp: Path, final: Path) -> None:
    r"""Moves ``tmp`` to ``final`` atomically, replacing a previous ``final``."""
    if final.is_dir() and not final.is_symlink():
        # os.replace cannot overwrite a non-empty directory: move it aside first.
        old = Path(tempfile.mkdtemp(prefix=OLD_PREFIX, dir=final.parent))
        os.replace(final, old / final.name)
        os.replace(tmp, final)
        remove_entry(old)
    else:
        os.replace(tmp, final)


@contextlib.contextmanager
def atomic_dir(final: Path, before: Optional[Callable[[Path], None]] = None) -> Iterator[Path]:
    r"""
    Context manager that yields an empty temporary folder next to ``final``;
    when the block exits normally the folder is renamed to ``final`` (replacing
    any previous version), and when it raises the folder is deleted, so
    ``final`` is never seen half-written.

    Args:
        final (pathlib.Path): the folder to create.
        before (callable, optional): called with ``final``'s (existing) parent
            folder before the temporary is made, e.g. the cache's stale cleanup
            (:func:`captum_normxlogit.resources._cache.clean_stale`). Default: None

    Returns:
        Iterator[pathlib.Path]: the temporary folder to fill.
    """
    final = Path(final)
    created: list = []
    try:
        _check_target(final, folder_wanted=True)
        created = _make_parents(final.parent)
        if before is not None:
            before(final.parent)
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=final.parent))
    except WriteError:
        raise
    except OSError as error:
        _remove_created(created)
        raise write_error(final, error) from None
    done = False
    try:
        yield tmp
        for path in (tmp, *tmp.rglob("*")):
            _default_mode(path)
        _replace(tmp, final)
        done = True
    except WriteError:
        raise
    except OSError as error:
        if error.errno in _REASONS:
            raise write_error(final, error) from None
        raise
    finally:
        if tmp.exists():
            remove_entry(tmp)
        if not done:
            _remove_created(created)


@contextlib.contextmanager
def atomic_file(final: Path, before: Optional[Callable[[Path], None]] = None) -> Iterator[Path]:
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
        before (callable, optional): as for :func:`atomic_dir`. Default: None

    Returns:
        Iterator[pathlib.Path]: the temporary path to write.
    """
    final = Path(final)
    created: list = []
    try:
        _check_target(final, folder_wanted=False)
        created = _make_parents(final.parent)
        if before is not None:
            before(final.parent)
        fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=final.parent)
        os.close(fd)
    except WriteError:
        raise
    except OSError as error:
        _remove_created(created)
        raise write_error(final, error) from None
    tmp = Path(name)
    done = False
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        _default_mode(tmp)
        os.replace(tmp, final)
        done = True
    except WriteError:
        raise
    except OSError as error:  # a full disk while the block wrote, a failed rename
        if error.errno in _REASONS:
            raise write_error(final, error) from None
        raise
    finally:
        if tmp.exists():
            remove_entry(tmp)
        if not done:
            _remove_created(created)


def check_writable(final: Path) -> None:
    r"""
    Checks, without leaving anything behind, that :func:`atomic_file` can
    write ``final``: its name fits the file system, no folder, FIFO or device
    stands in its place, and the nearest existing folder above it accepts a new
    file (probed by creating and removing one temporary of ours, which also
    works where permission bits say nothing, e.g. for root or read-only
    mounts). Missing folders are not created here.

    Args:
        final (pathlib.Path): the file to be written.

    Raises:
        WriteError: one sentence naming ``final``, what is wrong and what to do.
    """
    final = Path(final)
    try:
        limit = os.pathconf(_nearest_folder(final.parent), "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(final.name)) > limit:  # checked first: stat() of such a name fails itself
        raise write_error(final, OSError(errno.ENAMETOOLONG, "long"), f"the file name is too long (over {limit} bytes)")
    _check_target(final, folder_wanted=False)
    folder = _nearest_folder(final.parent)
    if not folder.is_dir():
        raise write_error(final, OSError(errno.ENOTDIR, "file"), f"{folder} is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as error:
        raise write_error(final, error) from None


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
