"""Every Python snippet in the README runs."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_snippets():
    assert len(SNIPPETS) >= 3


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(index, capsys):
    code = SNIPPETS[index]
    if "resources import" in code:
        pytest.importorskip("gguf")
        from captum_normxlogit.resources import sentiment_minilm_dir

        if not (sentiment_minilm_dir() / "metrics.json").exists():
            pytest.skip("real models not prepared (make prepare)")
    exec(compile(code, f"README snippet {index}", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip()  # every snippet prints what it shows
