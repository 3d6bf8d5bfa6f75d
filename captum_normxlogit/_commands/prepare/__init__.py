r"""``normxlogit prepare``: what ``python -m captum_normxlogit.resources prepare`` does (:mod:`.command`)."""

from captum_normxlogit._commands.prepare.command import register

__all__ = ["register"]
