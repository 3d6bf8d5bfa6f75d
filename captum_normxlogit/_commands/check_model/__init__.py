r"""``normxlogit check-model``: arguments, loading and the report in :mod:`.command`; the checks are
:func:`captum_normxlogit._core.check.check_model`.
"""

from captum_normxlogit._commands.check_model.command import register

__all__ = ["register"]
