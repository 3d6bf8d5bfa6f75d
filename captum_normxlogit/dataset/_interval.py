r"""The 95 % interval of a verified word's occlusion effect: bootstrap-t over the measured examples.

See :mod:`captum_normxlogit.dataset.verify` for why bootstrap-t and its measured coverage.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence, Tuple, Union

import numpy as np

__all__ = ["N_BOOT", "effect_interval", "t_quantile"]

N_BOOT = 999
# two-sided 95 % Student-t quantiles for 1..5 degrees of freedom; above, the Cornish-Fisher series
_T975 = {1: 12.706204736174698, 2: 4.302652729749464, 3: 3.182446305284263, 4: 2.7764451051977934, 5: 2.570581835636314}
_Z975 = 1.959963984540054


def t_quantile(df: int) -> float:
    r"""The 0.975 quantile of Student's t with ``df`` degrees of freedom (exact table to 5, then
    a four-term Cornish-Fisher expansion, within 1e-4 of the exact value).

    Returns:
        float
    """
    if df < 1:
        return math.nan
    if df in _T975:
        return _T975[df]
    z, v = _Z975, float(df)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4)
    )


def effect_interval(
    drops: Sequence[float], *, seed: Union[int, str] = 0, n_boot: int = N_BOOT
) -> Tuple[float, float, float]:
    r"""Mean and two-sided 95 % bootstrap-t interval of per-example probability drops.

    The bootstrap-t (studentised) interval ``[m - q(0.975) s / sqrt(n), m - q(0.025) s / sqrt(n)]``,
    ``q`` the quantiles of ``(m* - m) / (s* / sqrt(n))`` over ``n_boot`` resamples drawn with
    ``seed``: occlusion drops are skewed (most near 0, a few large), where it keeps its coverage
    better than the plain t interval (see :mod:`captum_normxlogit.dataset.verify`). Bounds are
    clipped to ``[-1, 1]``, the range of a probability drop.

    Args:
        drops (sequence of float): One drop per measured example.
        seed (int or str, optional): Seeds the resamples. Default: 0
        n_boot (int, optional): Resamples. Default: :data:`N_BOOT`

    Returns:
        (float, float, float): ``(mean, low, high)``; NaN bounds for fewer than 2 drops, all NaN for none.
    """
    d = np.asarray(list(drops), dtype=np.float64)
    if d.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if d.size < 2:
        return mean, math.nan, math.nan
    sd, root = float(d.std(ddof=1)), math.sqrt(d.size)
    if sd == 0:
        return mean, mean, mean
    entropy = int(hashlib.sha256(str(seed).encode()).hexdigest()[:15], 16)
    rng = np.random.default_rng(entropy)
    sample = d[rng.integers(0, d.size, (n_boot, d.size))]
    spread = sample.std(axis=1, ddof=1)
    keep = spread > 0  # a resample of one repeated value has no t
    t = (sample.mean(axis=1)[keep] - mean) / (spread[keep] / root)
    if t.size < 2:
        half = t_quantile(d.size - 1) * sd / root
        return mean, mean - half, mean + half
    low_q, high_q = np.quantile(t, [0.025, 0.975])
    # a drop of a probability lies in [-1, 1]; a skewed small sample can put a bound outside
    low, high = mean - float(high_q) * sd / root, mean - float(low_q) * sd / root
    return mean, max(low, -1.0), min(high, 1.0)
