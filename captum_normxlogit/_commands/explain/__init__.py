r"""``normxlogit explain``: arguments and terminal / HTML / PNG output in :mod:`.command`; loading the
model and explaining one text in :mod:`.logic`.
"""

from captum_normxlogit._commands.explain.command import register

__all__ = ["register"]
