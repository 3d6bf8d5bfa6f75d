r"""``normxlogit demo``: arguments in :mod:`.command`, the run on the embedded real models in :mod:`.logic`."""

from captum_normxlogit._commands.demo.command import register

__all__ = ["register"]
