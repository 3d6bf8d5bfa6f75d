r"""Side-by-side comparisons of attribution methods on one model and one data set.

* :mod:`.run`: :func:`compare` explains the same inputs with every method, times
  them, measures their memory and scores them on the faithfulness metrics;
  it returns a :class:`ComparisonResult`.
* :mod:`.report`: the result's Markdown report and its curve figure.

``captum_normxlogit.compare`` is the same function as :func:`compare`.
"""

from captum_normxlogit.comparison.run import ComparisonResult, compare

__all__ = ["ComparisonResult", "compare"]
