r"""Views of token attributions: Captum records, a standalone HTML page, terminal colours."""
from captum_normxlogit.visualization.html import render_html
from captum_normxlogit.visualization.records import scale_signed, to_visualization_records
from captum_normxlogit.visualization.terminal import render_terminal

__all__ = ["render_html", "render_terminal", "scale_signed", "to_visualization_records"]
