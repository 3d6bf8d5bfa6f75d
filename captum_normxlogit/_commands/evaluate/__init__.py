r"""``normxlogit evaluate``: arguments and dispatch in :mod:`.command`; the tasks it runs are the table
:data:`captum_normxlogit._commands.evaluate.tasks.TASKS`.
"""

from captum_normxlogit._commands.evaluate.command import register

__all__ = ["register"]
