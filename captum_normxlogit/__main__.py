r"""``python -m captum_normxlogit``: the ``normxlogit`` command, for an environment without its script on PATH."""

import sys

from captum_normxlogit.cli import main

if __name__ == "__main__":
    sys.exit(main())
