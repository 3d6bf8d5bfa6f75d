"""The tutorials run top to bottom on the real models, so they cannot rot."""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))


def test_notebooks_are_committed_without_outputs():
    nbformat = pytest.importorskip("nbformat")
    assert [p.name for p in NOTEBOOKS] == ["01_sentiment_minilm.ipynb", "02_smollm2_generation.ipynb"]
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert code and all(not c.outputs and c.execution_count is None for c in code), path.name


def _execute(path: pathlib.Path, cwd: pathlib.Path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    # The kernel is this interpreter's (ipykernel's native "python3"); a failing cell raises CellExecutionError.
    nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    return text, html, images


@pytest.mark.real
def test_sentiment_notebook_runs(tmp_path):
    text, html, images = _execute(TUTORIALS / "01_sentiment_minilm.ipynb", tmp_path)
    assert "POSITIVE (p=" in text and "BertForSequenceClassification" in text
    # visualize_text's table, with both methods and the stated scaling, then the standalone page.
    assert "Word Importance" in html and "NormXLogit · ÷" in html and "IntegratedGradients · ÷" in html
    opened = re.search(r"open (\S+sentiment_minilm\.html) in a browser", text)
    assert opened is not None, text
    written = opened.group(1)
    assert "seductive" in pathlib.Path(written).read_text(encoding="utf-8")
    assert "comp_aopc" in html and "Random" in html  # the faithfulness table from compare()
    assert len(images) == 2  # the layer heatmap and the faithfulness curves


@pytest.mark.real
def test_smollm2_notebook_runs(tmp_path):
    text, html, images = _execute(TUTORIALS / "02_smollm2_generation.ipynb", tmp_path)
    assert "next token: ' Paris'" in text and "token_attr: (6, 5)" in text
    assert "LayerIntegratedGradients" in html and "&#x27; Paris&#x27; − &#x27; Lyon&#x27;" in html
    assert len(images) == 2  # Captum's plot_token_attr and the layer heatmap


@pytest.mark.real
def test_side_by_side_tutorial(tmp_path):
    result = subprocess.run(
        [sys.executable, str(TUTORIALS / "side_by_side.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Spearman rank agreement" in result.stdout
    png = tmp_path / "layerwise_heatmap.png"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
