r"""Whole datasets: attribution at scale and dataset-level explanations."""

# -- dataset-level explanations (summary, ablation check) ----------------------------------
from captum_normxlogit.dataset.summary import DEFAULT_STATISTIC, STATISTICS, DatasetSummary, summarize

__all__ = [
    # dataset-level explanations
    "DEFAULT_STATISTIC",
    "DatasetSummary",
    "STATISTICS",
    "summarize",
]
