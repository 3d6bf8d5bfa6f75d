"""Every Python snippet in the README and in docs/*.md runs."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SNIPPETS = [
    (page.relative_to(ROOT).as_posix(), code)
    for page in PAGES
    for code in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
]
IDS = [f"{page}#{i}" for i, (page, _) in enumerate(SNIPPETS)]


def test_readme_has_snippets():
    assert len(SNIPPETS) >= 3


@pytest.mark.parametrize("index", range(len(SNIPPETS)), ids=IDS)
def test_readme_snippet_runs(index, capsys, tmp_path, monkeypatch):
    page, code = SNIPPETS[index]
    monkeypatch.chdir(tmp_path)  # snippets that save figures write under out/ of a scratch folder
    if "resources import" in code:
        pytest.importorskip("gguf")
        from captum_normxlogit.resources import sentiment_minilm_dir

        if not (sentiment_minilm_dir() / "metrics.json").exists():
            pytest.skip("real models not prepared (make prepare)")
    exec(compile(code, f"{page} snippet {index}", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip()  # every snippet prints what it shows
