r"""Small helpers the package itself uses that a caller may want too.

* :func:`pad_batch`: stack token-id rows of different lengths into ``(ids, mask)``, the inputs
  every attribution call of the package takes.
* :func:`atomic_write_text`, :func:`atomic_write_bytes` and :func:`atomic_file`: write a file the
  way the package writes its own (a hidden temporary in the same folder, renamed into place when
  complete), so that a file under its final name is never half written. The repository's studies
  (``studies/``) write their tables with them. A write that fails (a full disk, a read-only folder)
  raises :class:`WriteError`, an ``OSError`` whose message is one sentence naming the file.
* :class:`PeakMeter`, :func:`reset_peak`, :func:`peak_above` and :func:`status_mib`: the memory
  meter :func:`captum_normxlogit.compare` and the repository's benchmarks (``benchmarks/``) use:
  time and peak memory of a block inside a running process, or the kernel's peak-RSS mark of the
  whole process (Linux) for one call per fresh process.
"""

from captum_normxlogit._utils.atomic import WriteError, atomic_file, atomic_write_bytes, atomic_write_text
from captum_normxlogit._utils.memory import PeakMeter, peak_above, reset_peak, status_mib
from captum_normxlogit._utils.padding import pad_batch

__all__ = [
    "PeakMeter",
    "WriteError",
    "atomic_file",
    "atomic_write_bytes",
    "atomic_write_text",
    "pad_batch",
    "peak_above",
    "reset_peak",
    "status_mib",
]
