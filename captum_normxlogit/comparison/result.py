r"""What :func:`~captum_normxlogit.compare` returns: :class:`ComparisonResult`, its table, curves and files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from captum_normxlogit._utils.atomic import atomic_file, atomic_write_text
from captum_normxlogit.comparison.report import curves_figure, markdown_report
from captum_normxlogit.metrics.faithfulness import FaithfulnessCurve

if TYPE_CHECKING:  # pandas is imported when a comparison runs, not with the package
    import pandas as pd

__all__ = ["ComparisonResult"]


@dataclass
class ComparisonResult:
    r"""What :func:`compare` returns.

    Attributes:
        table (pandas.DataFrame): One row per method, in run order. Columns:
            ``method``; ``comp_aopc`` / ``suff_aopc`` (mean probability drop
            over K = 10..90 %, the paper's Comp_CD / Suff_CD: higher / lower
            is better); ``comp_acc_aopc`` / ``suff_acc_aopc`` (gold-label
            accuracy, lower / higher is better; NaN without labels);
            ``eraser_comp_aopc``, ``eraser_suff_aopc``, ``eraser_comp_acc_aopc``,
            ``eraser_suff_acc_aopc`` (the same over the ERASER bins 1, 5, 10,
            20, 50 %); ``seconds`` (wall time of the attributions alone),
            ``ms_per_example`` and ``peak_mib`` (peak memory of the
            attributions above what was in use before: CUDA allocations on a
            GPU, sampled resident memory on a CPU).
        curves (pandas.DataFrame): Long format, one row per method, protocol
            (``"paper"`` / ``"eraser"``), kind and ratio, with ``prob_drop``
            and ``accuracy``.
        settings (dict): How the run was made (counts, steps, removal, ...).
        notes (list of str): Free lines written at the top of the Markdown report.
        per_example (dict): ``{method: {kind: FaithfulnessCurve}}`` over all
            examples (paper and ERASER ratios together).
    """

    table: "pd.DataFrame"
    curves: "pd.DataFrame"
    settings: Dict[str, Any]
    notes: List[str] = field(default_factory=list)
    per_example: Dict[str, Dict[str, FaithfulnessCurve]] = field(default_factory=dict, repr=False)

    def plot(self, path: Union[str, Path], title: Optional[str] = None) -> Path:
        r"""Draw the comprehensiveness and sufficiency curves (paper ratios) to a PNG, atomically.

        Returns:
            pathlib.Path: ``path``.
        """
        path = Path(path)
        figure = curves_figure(self.curves, title or self.settings.get("title", "Faithfulness curves"))
        with atomic_file(path) as tmp:
            figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        return path

    def to_markdown(self, image: Optional[str] = None) -> str:
        r"""The report: notes, settings and the table, with ``image`` linked under it."""
        return markdown_report(self.table, self.settings, self.notes, image)

    def write(self, output_dir: Union[str, Path], stem: str = "comparison") -> List[Path]:
        r"""Write ``<stem>.csv`` (the table), ``<stem>_curves.csv``, ``<stem>.md`` and ``<stem>.png``.

        Each file is written atomically: it is complete or absent, never half written.

        Args:
            output_dir (str or Path): Created if missing; must not be a file.
            stem (str, optional): File name stem. Default: ``"comparison"``

        Returns:
            list of pathlib.Path: The four files, in the order above.
        """
        folder = Path(output_dir)
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder} exists and is not a folder; choose another output directory.")
        folder.mkdir(parents=True, exist_ok=True)
        png = self.plot(folder / f"{stem}.png")
        paths = [folder / f"{stem}.csv", folder / f"{stem}_curves.csv", folder / f"{stem}.md", png]
        atomic_write_text(paths[0], self.table.to_csv(index=False))
        atomic_write_text(paths[1], self.curves.to_csv(index=False))
        atomic_write_text(paths[2], self.to_markdown(png.name))
        return paths
