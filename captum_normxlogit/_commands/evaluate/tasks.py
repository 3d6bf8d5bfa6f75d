r"""The table of evaluation tasks that ``normxlogit evaluate`` runs: name → runner, description, defaults.

``evaluate`` reads only :data:`TASKS`: its ``--task`` choices, the task list and the per-task defaults
of its ``--help``, the order of ``--task all`` and which tasks take ``--methods``. The runners' own
keyword defaults are the table's (``run_sentiment_minilm(limit=TASKS["sentiment-minilm"].limit, ...)``),
so a default is stated once. A runner is named, not imported: building the command line imports no
model code, and the function is looked up when the task runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

__all__ = ["TASKS", "Task"]


@dataclass(frozen=True)
class Task:
    r"""One evaluation task.

    Attributes:
        name (str): The ``--task`` value, e.g. ``"sentiment-minilm"``.
        description (str): One line for ``normxlogit evaluate --help``.
        runner (str): ``"module:function"`` under ``captum_normxlogit._commands.evaluate``;
            the function takes keyword arguments ``limit``, ``ig_steps``,
            ``batch_size``, ``device``, ``progress`` (and ``methods`` when
            :attr:`takes_methods`) and returns an object with ``.table`` (a pandas
            DataFrame) and ``.write(output_dir) -> list of Path``.
        limit (int or None): Default number of sentences / items; None for all.
        batch_size (int): Default examples per attribution call.
        ig_steps (int): Default Integrated Gradients steps.
        takes_methods (bool): Whether ``--methods`` chooses its methods; a task
            without it runs its own set.
    """

    name: str
    description: str
    runner: str
    limit: Optional[int]
    batch_size: int
    ig_steps: int
    takes_methods: bool

    def function(self) -> Callable[..., Any]:
        r"""The runner, imported now (a test may have replaced it on its module)."""
        module, name = self.runner.split(":")
        return getattr(importlib.import_module(f"captum_normxlogit._commands.evaluate.{module}"), name)


# Settings of the committed runs (benchmarks/results/evaluation), chosen to fit a 2-core CPU: a SmolLM2
# forward pass costs ten times MiniLM's, and the protocol runs about 19 perturbed copies of each sentence
# per method.
_TABLE = (
    Task(
        "sentiment-minilm",
        "fine-tuned MiniLM on the 500 held-out Rotten-Tomatoes sentences",
        "sentiment:run_sentiment_minilm",
        limit=None,
        batch_size=16,
        ig_steps=20,
        takes_methods=True,
    ),
    Task(
        "sentiment-smollm2",
        "SmolLM2-135M as a label-word sentiment classifier on the first 100 of them",
        "sentiment:run_sentiment_smollm2",
        limit=100,
        batch_size=8,
        ig_steps=10,
        takes_methods=True,
    ),
    Task(
        "agreement-smollm2",
        "evidence alignment of SmolLM2-135M on agreement items",
        "agreement:run_agreement",
        limit=None,
        batch_size=16,
        ig_steps=20,
        takes_methods=False,
    ),
)

#: Task name → :class:`Task`, in the order ``--task all`` runs them.
TASKS: Dict[str, Task] = {task.name: task for task in _TABLE}
