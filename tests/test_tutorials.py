"""The tutorials run top to bottom."""
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.real
ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_side_by_side_tutorial(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "tutorials" / "side_by_side.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Spearman rank agreement" in result.stdout
    png = tmp_path / "layerwise_heatmap.png"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
