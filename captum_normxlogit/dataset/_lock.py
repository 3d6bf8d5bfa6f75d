r"""One run per output folder: an exclusive ``flock`` on a lock file the package creates there.

The lock file is ``.captum_normxlogit-lock`` in the output folder (hidden: pandas
and ``datasets`` skip it). The run holds ``flock(LOCK_EX)`` on it from before it
looks at the folder until the manifest says ``complete``; a second run into the
same folder (``resume=False`` included) is refused with a sentence while the
first is alive. The kernel drops a ``flock`` when its process dies, SIGKILL
included, so no stale lock survives a crash: the file may remain, unlocked,
and the next run takes it. The holder removes the file while still holding the
lock; a run that locked a file that was meanwhile removed (or replaced) sees
another inode under the name and tries again, so two runs never both hold it.

Under ``torchrun`` only rank 0 takes the lock: the other ranks of the same run
are admitted through the process group (rank 0 shares its verdict with
:func:`share`), so all ranks of ONE run write into the folder and every rank
of a second run is refused with the same sentence.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Any, Iterator, List, Optional

__all__ = ["LOCK_NAME", "FolderBusyError", "folder_lock", "gather", "share"]

LOCK_NAME = ".captum_normxlogit-lock"


class FolderBusyError(RuntimeError):
    r"""Another run holds the output folder's lock."""


def _distributed(ctx: Any) -> Optional[Any]:
    if ctx is None or ctx.world_size <= 1:
        return None
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def share(ctx: Any, value: Any) -> Any:
    r"""Rank 0's ``value`` on every rank (itself for one process)."""
    dist = _distributed(ctx)
    if dist is None:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(ctx: Any, value: Any) -> List[Any]:
    r"""Every rank's ``value``, in rank order, on every rank (``[value]`` for one process)."""
    dist = _distributed(ctx)
    if dist is None:
        return [value]
    boxes: List[Any] = [None] * ctx.world_size
    dist.all_gather_object(boxes, value)
    return boxes


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return f" (held by {text})"
    return ""


def _take(out: Path) -> int:
    r"""Lock ``out/LOCK_NAME``; returns its descriptor. Raises :class:`FolderBusyError`."""
    path = out / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise FolderBusyError(
                f"output_dir {out} is in use by another attribute_dataset run{_holder(path)}; wait for it "
                "to finish (resume=False / --no-resume is refused too while it runs), or choose another folder."
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file as we took it: try the new one
    os.ftruncate(fd, 0)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode())
    return fd


@contextlib.contextmanager
def folder_lock(out: Path, ctx: Any = None) -> Iterator[None]:
    r"""Hold the output folder for this run (rank 0 locks; the verdict is shared with every rank).

    Creates the folder if needed; a folder it created and that is empty again
    when the block exits (e.g. the run was refused) is removed.

    Args:
        out (pathlib.Path): The output folder.
        ctx (RankContext, optional): The run's ranks. Default: one process

    Raises:
        FolderBusyError: Another run holds the folder.
    """
    out = Path(out)
    main = ctx is None or ctx.is_main
    fd, created, refusal = None, False, None
    if main:
        created = not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
            fd = _take(out)
        except FolderBusyError as error:
            refusal = str(error)
        except OSError as error:
            refusal = f"output_dir {out} cannot be locked for this run ({error.strerror or error}); check the path."
    refusal = share(ctx, refusal)
    if refusal is not None:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise FolderBusyError(refusal)
    try:
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(out / LOCK_NAME)  # while still held: see the module docstring
            os.close(fd)
            if created:
                with contextlib.suppress(OSError):
                    out.rmdir()  # only when empty: a refused run leaves no folder behind
