r"""One module per ``normxlogit`` subcommand; each exposes ``register(subparsers)``.

``register`` adds its parser and sets ``run=callable(args, parser) -> int`` as the
parser default, so ``cli.main`` stays a dispatcher that knows no command's options.
"""
