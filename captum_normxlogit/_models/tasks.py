r"""
The one vocabulary of tasks a model head serves.

Every module that asks what a model does (the adapters and their families,
the automatic adapter, ``check-model``, :class:`~captum_normxlogit.LLMNormXLogit`,
``explain``, the dataset tasks) compares :attr:`ModelAdapter.task` with these
constants; none spells the names itself. A sequence classifier with one label
is a regression head (:attr:`ModelAdapter.is_regression`), not another task.
"""

from __future__ import annotations

__all__ = ["CAUSAL_LM", "MASKED_LM", "MODEL_TASKS", "SEQUENCE_CLASSIFICATION"]

#: A ``*ForSequenceClassification`` head: class logits (one label: regression).
SEQUENCE_CLASSIFICATION = "sequence_classification"
#: A causal language model: next-token logits.
CAUSAL_LM = "causal_lm"
#: A masked language model: token logits at the mask position.
MASKED_LM = "masked_lm"
#: Every task a head can serve, in the order error messages list them.
MODEL_TASKS = (SEQUENCE_CLASSIFICATION, CAUSAL_LM, MASKED_LM)
