r"""Evaluation experiments on real models.

:data:`.tasks.TASKS` is the one table of the tasks ``normxlogit evaluate`` runs (name → runner,
one-line description, defaults); each runner lives in its own module (:mod:`.sentiment`,
:mod:`.agreement`) and returns an object with ``.table`` (a pandas DataFrame) and
``.write(output_dir) -> list[Path]``. :mod:`.dataset_summary` holds the real dataset-summary runs
behind ``make dataset``.
"""
