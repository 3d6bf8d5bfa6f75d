r"""Side-by-side comparisons of attribution methods on one model and one data set.

* :mod:`.run`: :func:`compare` explains the same inputs with every method, times
  them, measures their memory and scores them on the faithfulness metrics;
  it returns a :class:`ComparisonResult`.
* :mod:`.result`: :class:`ComparisonResult`, its files;
* :mod:`.settings`: the settings groups ``compare`` takes (also exported by ``captum_normxlogit``);
* :mod:`.report`: the result's Markdown report and its curve figure.

``captum_normxlogit.compare`` is the same function as :func:`compare`.
"""

from captum_normxlogit.comparison.result import ComparisonResult
from captum_normxlogit.comparison.run import compare

__all__ = ["ComparisonResult", "compare"]  # compare's settings groups: captum_normxlogit.comparison.settings
