r"""One package per ``normxlogit`` subcommand: ``_commands/<name>/`` (``-`` spelt ``_``).

Each package exposes ``register(subparsers)``, defined in its ``command.py`` together with the
command's arguments, help text and what it prints; a command with logic of its own keeps it
beside, in ``logic.py`` (``demo``, ``explain``). ``register`` adds its parser and sets
``run=callable(args, parser) -> int`` as the parser default, so ``cli.main`` stays a dispatcher
that knows no command's options.
"""
