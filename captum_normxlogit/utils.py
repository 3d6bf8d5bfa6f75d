r"""Small helpers the package itself uses that a caller may want too.

* :func:`pad_batch`: stack token-id rows of different lengths into ``(ids, mask)``, the inputs
  every attribution call of the package takes.
* :func:`atomic_write_text`, :func:`atomic_write_bytes` and :func:`atomic_file`: write a file the
  way the package writes its own (a hidden temporary in the same folder, renamed into place when
  complete), so that a file under its final name is never half written. The repository's studies
  (``studies/``) write their tables with them. A write that fails (a full disk, a read-only folder)
  raises :class:`WriteError`, an ``OSError`` whose message is one sentence naming the file.
"""

from captum_normxlogit._utils.atomic import WriteError, atomic_file, atomic_write_bytes, atomic_write_text
from captum_normxlogit._utils.padding import pad_batch

__all__ = ["WriteError", "atomic_file", "atomic_write_bytes", "atomic_write_text", "pad_batch"]
