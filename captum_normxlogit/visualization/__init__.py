r"""Views of token attributions, all on one signed colour scale (green towards the
target, red away, white 0):

* :func:`to_visualization_records`: records for Captum's own ``visualize_text``;
* :func:`render_html` / :func:`write_html`: a standalone page, one row per method;
* :func:`print_example` / :func:`render_terminal`: the same in a terminal (``rich``);
* :func:`plot_layer_heatmap`: layers x tokens for one example (matplotlib);
  :func:`plot_llm_layer_heatmap` the same for one output token of ``LLMNormXLogit.attribute_layers``;
* :func:`merge_subwords`: sub-word tokens into words, scores summed;
* :func:`visible_text`: control, bidi and zero-width characters as ``⟨U+XXXX⟩``
  (every view shows text through it).
"""

from captum_normxlogit._utils.tokens import detect_scheme, display_token, merge_subwords, visible_text
from captum_normxlogit.visualization.colours import scale_signed
from captum_normxlogit.visualization.example import ExplainedExample
from captum_normxlogit.visualization.heatmap import plot_layer_heatmap, plot_llm_layer_heatmap
from captum_normxlogit.visualization.html import render_html, write_html
from captum_normxlogit.visualization.records import to_visualization_records
from captum_normxlogit.visualization.terminal import make_console, print_example, render_terminal

__all__ = [
    "ExplainedExample",
    "detect_scheme",
    "display_token",
    "make_console",
    "merge_subwords",
    "plot_layer_heatmap",
    "plot_llm_layer_heatmap",
    "print_example",
    "render_html",
    "render_terminal",
    "scale_signed",
    "to_visualization_records",
    "visible_text",
    "write_html",
]
