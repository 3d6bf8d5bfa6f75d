r"""``normxlogit merge-dataset``: one folder from the per-node folders of a run; the checks are
:func:`captum_normxlogit.dataset.merge_attributions`.
"""

from captum_normxlogit._commands.merge_dataset.command import register

__all__ = ["register"]
