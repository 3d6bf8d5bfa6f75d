r"""MkDocs hooks that make the site out of the repository's own files (run by ``make docs``).

The site mirrors the repository: ``README.md`` is the home page, ``docs/views.md`` stays at
``docs/views.md``, ``benchmarks/results/...`` at ``benchmarks/results/...``, so every relative link
that works on GitHub works on the site unchanged, and ``mkdocs build --strict`` fails on one that
does not. Besides that, the hooks

* render the tutorials (``tutorials/*.ipynb``) to Markdown with nbconvert, without executing them
  (they are committed without outputs and need the real models);
* write one API page per public module of ``captum_normxlogit`` (every module without a leading
  underscore that declares ``__all__``), with one mkdocstrings block per name of its ``__all__``,
  and put those pages in the navigation;
* write an index page for each folder of ``benchmarks/results`` that a page links to as a folder.

Nothing here fetches: the build works offline.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
# One list of public modules for the pages and for the docstring check (docs/_public_api.py).
_spec = importlib.util.spec_from_file_location("_public_api", Path(__file__).with_name("_public_api.py"))
_public_api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_public_api)
PACKAGE = _public_api.PACKAGE
public_modules = _public_api.public_modules
TUTORIALS = "tutorials"
RESULTS = "benchmarks/results"
# Links inside Markdown: ](target) or ](target "title"); only relative targets are rewritten.
LINK = re.compile(r"\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)")


def _page_name(module: str) -> str:
    return "api/index.md" if module == PACKAGE else f"api/{module.rsplit('.', 1)[1]}.md"


def _api_page(module: str) -> str:
    exported = sorted(importlib.import_module(module).__all__, key=str.lower)
    lines = [
        f"# {module}",
        "",
        f"::: {module}",
        "    options:",
        "      show_root_heading: false",
        "      members: false",
        "",
        f"Every public name of `{module}` (its `__all__`), from the docstrings; each entry names",
        'the file that defines it ("Source code in ...").',
        "",
    ]
    if module == PACKAGE:
        others = [m for m in public_modules() if m != PACKAGE]
        links = ", ".join(f"[`{m}`]({Path(_page_name(m)).name})" for m in others)
        lines += [f"The other public modules: {links}.", ""]
    for name in exported:
        _refuse_shadowing(module, name)
        lines += [f"::: {module}.{name}", ""]
    return "\n".join(lines)


def _refuse_shadowing(module: str, name: str) -> None:
    r"""Fail the build when ``module.name`` is both a sub-module and another object that hides it.

    griffe would document the sub-module under that name, not the object users get; the package
    has no such name (issue 11: ``comparison/`` exports ``compare``), and this keeps it so.
    """
    package = importlib.import_module(module)
    # Look in the package's own folder (an import finder, e.g. an editable install's, may answer
    # for another copy of the package).
    submodules = {info.name for info in pkgutil.iter_modules(getattr(package, "__path__", []))}
    if name in submodules and not inspect.ismodule(getattr(package, name)):
        raise ValueError(f"{module}.{name} is both a sub-module and the object that hides it; rename one of them.")


def _notebook_page(path: Path) -> str:
    import nbconvert
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    body, _ = nbconvert.MarkdownExporter().from_notebook_node(notebook)
    note = (
        '!!! note "Rendered without running"\n'
        f"    This page is `{path.relative_to(ROOT).as_posix()}` without outputs. Run it with the real\n"
        "    models prepared (see [the tutorials](README.md)); the test suite executes it.\n\n"
    )
    # The notebook's first heading stays the page title: put the note after it.
    head, sep, rest = body.partition("\n")
    return head + sep + "\n" + note + rest if head.startswith("# ") else note + body


def _results_index(folder: Path) -> str:
    rel = folder.relative_to(ROOT).as_posix()
    lines = [f"# `{rel}/`", "", "Committed result files (not recomputed by the docs build).", ""]
    for child in sorted(folder.iterdir()):
        if child.is_dir():
            lines.append(f"- [`{child.name}/`]({child.name}/index.md)")
        elif child.suffix == ".md":
            lines.append(f"- [`{child.name}`]({child.name})")
        else:
            lines.append(f"- [`{child.name}`]({child.name}) (download)")
    return "\n".join(lines) + "\n"


def on_config(config, **kwargs):
    r"""Put one API page per public module into the "API reference" section of the nav."""
    pages = [_page_name(m) if m == PACKAGE else {m: _page_name(m)} for m in public_modules()]
    for item in config["nav"]:
        if isinstance(item, dict) and "API reference" in item:
            item["API reference"] = pages
    return config


def on_files(files: Files, config, **kwargs) -> Files:
    r"""Lay the repository's pages out at their repository paths and add the generated ones."""
    docs_dir = Path(config["docs_dir"]).resolve()
    for file in list(files):
        if file.inclusion.is_excluded() or not file.abs_src_path:
            continue
        if Path(file.abs_src_path).resolve().is_relative_to(docs_dir):
            files.remove(file)
            files.append(File.generated(config, f"docs/{file.src_uri}", abs_src_path=file.abs_src_path))
    files.append(File.generated(config, "index.md", abs_src_path=str(ROOT / "README.md")))
    files.append(File.generated(config, "CONTRIBUTING.md", abs_src_path=str(ROOT / "CONTRIBUTING.md")))
    for path in sorted((ROOT / TUTORIALS).iterdir()):
        uri = path.relative_to(ROOT).as_posix()
        if path.suffix == ".ipynb":
            files.append(File.generated(config, uri[: -len(".ipynb")] + ".md", content=_notebook_page(path)))
        elif path.is_file():
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    results = ROOT / RESULTS
    for path in sorted(results.rglob("*")):
        if path.is_file():
            files.append(File.generated(config, path.relative_to(ROOT).as_posix(), abs_src_path=str(path)))
    for folder in [results, *sorted(p for p in results.rglob("*") if p.is_dir())]:
        if not (folder / "index.md").exists() and not (folder / "README.md").exists():
            uri = (folder / "index.md").relative_to(ROOT).as_posix()
            files.append(File.generated(config, uri, content=_results_index(folder)))
    for module in public_modules():
        files.append(File.generated(config, _page_name(module), content=_api_page(module)))
    return files


def _rewrite(match: re.Match, page_dir: Path) -> str:
    target = match.group("target")
    if "://" in target or target.startswith(("#", "mailto:")):
        return match.group(0)
    path, hash_, anchor = target.partition("#")
    if path.endswith(".ipynb"):
        path = path[: -len(".ipynb")] + ".md"
    elif path.endswith("/") or path in ("", "."):
        if path:
            folder = page_dir / path
            path += "README.md" if (folder / "README.md").exists() else "index.md"
    return f"]({path}{hash_}{anchor}{match.group('title') or ''})"


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    r"""Links to notebooks go to their rendered pages; links to folders to their index page."""
    page_dir = ROOT / Path(page.file.src_uri).parent
    return LINK.sub(lambda m: _rewrite(m, page_dir), markdown)
