r"""A layers x tokens heatmap of signed scores for one example (matplotlib, Agg backend)."""

from __future__ import annotations

from typing import List, Optional, Protocol, Sequence, Tuple

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from torch import Tensor

from captum_normxlogit._utils.tokens import detect_scheme, display_token, visible_text
from captum_normxlogit.visualization.colours import MISSING_RGB, NEGATIVE_RGB, POSITIVE_RGB, ZERO_RGB, finite_max

__all__ = ["CMAP", "plot_layer_heatmap", "plot_llm_layer_heatmap"]


class _LayerResult(Protocol):
    r"""What :func:`plot_llm_layer_heatmap` reads of an ``LLMLayerAttributionResult`` (the views do not
    import the core's classes: they take its fields by name)."""

    scores: Tensor
    layers: List[int]
    input_tokens: List[str]
    output_tokens: List[str]


def _unit_rgb(rgb: Sequence[int]) -> Tuple[float, float, float]:
    r"""0-255 channels as matplotlib's 0-1 triple."""
    red, green, blue = rgb
    return red / 255, green / 255, blue / 255


#: The diverging scale of the HTML and terminal views: red (against) - white (0) - green (towards).
CMAP = LinearSegmentedColormap.from_list(
    "normxlogit_signed", [_unit_rgb(rgb) for rgb in (NEGATIVE_RGB, ZERO_RGB, POSITIVE_RGB)]
).with_extremes(bad=_unit_rgb(MISSING_RGB))  # NaN cells grey, as in the other views


def plot_layer_heatmap(
    scores: Tensor,
    tokens: Sequence[str],
    *,
    layer_labels: Optional[Sequence[str]] = None,
    title: Optional[str] = None,
    ax: Optional[Axes] = None,
) -> Figure:
    r"""Draw signed per-layer token scores as a heatmap.

    The colour scale is diverging and symmetric around 0 (``vmin = -m``,
    ``vmax = +m`` with ``m = max |score|`` over the whole map), so one colour
    means one value in every layer and white is exactly 0. Green
    pushes towards the target, red away from it (the colours of the
    HTML and terminal views). The colourbar is labelled with
    the raw score range; nothing is rescaled.

    Args:
        scores (Tensor): ``(L + 1, T)`` signed scores, e.g. one row of
            ``NormXLogit.attribute_all_layers`` (hidden state 0 = the embedding
            output, at the top).
        tokens (sequence of str): ``T`` token strings, shown on the x axis in
            readable form (byte-level ``Ġ`` decoded, ``▁`` dropped, see
            :func:`~captum_normxlogit.visualization.display_token`), so
            ``convert_ids_to_tokens`` output can be passed as it is.
        layer_labels (sequence of str, optional): ``L + 1`` names for the
            rows. Default: None (``"0"`` .. ``"L"``, the hidden-state index)
        title (str, optional): Axes title. Default: None (no title)
        ax (matplotlib Axes, optional): Where to draw; a figure sized to the
            number of tokens is created when omitted. Default: None

    Returns:
        *matplotlib.figure.Figure*: the figure holding the heatmap (``ax``'s
        figure when given). A new figure is drawn on matplotlib's
        non-interactive Agg canvas and is never shown: save it with
        ``fig.savefig(path)``, or let a notebook display it.
    """
    if not isinstance(scores, Tensor) or scores.dim() != 2:
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(
            f"scores must be a 2-D (layers, tokens) Tensor, got {shape}; pick one example of "
            "attribute_all_layers' (B, L + 1, T) output, e.g. scores[0]."
        )
    n_layers, n_tokens = scores.shape
    if len(tokens) != n_tokens:
        raise ValueError(f"{len(tokens)} tokens for {n_tokens} score columns; pass one token string per column.")
    y_name = "layer"
    if layer_labels is None:
        layer_labels = [str(i) for i in range(n_layers)]
        y_name = "hidden state (0 = embeddings)"
    elif len(layer_labels) != n_layers:
        raise ValueError(f"{len(layer_labels)} layer labels for {n_layers} score rows; pass one label per row.")

    values = scores.detach().float().cpu().numpy()
    limit = finite_max(scores.detach().float().cpu())  # a NaN must not break the scale of every other cell
    limit = limit if limit > 0 else 1.0  # an all-zero map still needs a valid, centred scale

    if ax is None:
        # A bare Figure on the Agg canvas, not pyplot: no global backend switch, no GUI window,
        # nothing kept alive by pyplot's figure registry (the caller owns the figure).
        fig = Figure(figsize=(max(6.0, 0.55 * n_tokens + 2.5), max(2.6, 0.24 * n_layers + 1.9)))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
    else:
        parent = ax.figure
        fig = parent if isinstance(parent, Figure) else parent.figure  # a SubFigure's own Figure
    image = ax.imshow(values, cmap=CMAP, vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(n_tokens))
    scheme = detect_scheme(tokens)
    ax.set_xticklabels([display_token(t, scheme) for t in tokens], rotation=60, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n_layers))
    ax.set_yticklabels([visible_text(str(label)) for label in layer_labels])
    ax.set_ylabel(y_name)
    ax.set_xlabel("token")
    if title:
        ax.set_title(visible_text(title))
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label(f"raw score, symmetric scale ±{limit:.3g}\n(green: towards target, red: away)")
    fig.tight_layout()
    return fig


def plot_llm_layer_heatmap(result: _LayerResult, output_index: int = 0, *, ax: Optional[Axes] = None) -> Figure:
    r"""Draw one output token of ``LLMNormXLogit.attribute_layers`` as a ``(layers, input tokens)`` heatmap.

    Args:
        result (LLMLayerAttributionResult): What
            :meth:`~captum_normxlogit.LLMNormXLogit.attribute_layers` returned.
        output_index (int, optional): Which output token (row ``j`` of
            ``result.scores``; negative counts from the end). Default: 0
        ax (matplotlib Axes, optional): Where to draw, as in
            :func:`plot_layer_heatmap`. Default: None

    Returns:
        *matplotlib.figure.Figure*: from :func:`plot_layer_heatmap`, rows labelled with
        ``result.layers``, titled with the output token.
    """
    n = len(result.output_tokens)
    if not -n <= output_index < n:
        raise IndexError(f"output_index {output_index} out of range for {n} output tokens; pass 0..{n - 1}.")
    return plot_layer_heatmap(
        result.scores[output_index],
        result.input_tokens,
        layer_labels=[str(layer) for layer in result.layers],
        title=f"NormXLogit per layer for output token {result.output_tokens[output_index]!r}",
        ax=ax,
    )
