r"""``normxlogit summarize``: arguments and the written files in :mod:`.command`; the statistics are
:mod:`captum_normxlogit.dataset.summary`, the views :mod:`captum_normxlogit.dataset.report`.
"""

from captum_normxlogit._commands.summarize.command import register

__all__ = ["register"]
