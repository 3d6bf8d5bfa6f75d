r"""``normxlogit attribute-dataset``: arguments and the summary line in :mod:`.command`; the work is
:func:`captum_normxlogit.dataset.attribute_dataset`.
"""

from captum_normxlogit._commands.attribute_dataset.command import register

__all__ = ["register"]
