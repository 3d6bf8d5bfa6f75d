"""The `normxlogit` command."""

import subprocess
import sys

import pytest

from captum_normxlogit import __version__
from captum_normxlogit.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "demo" in capsys.readouterr().out


def test_each_command_is_one_package_under_commands():
    import importlib
    from pathlib import Path

    import captum_normxlogit
    from captum_normxlogit.cli import COMMANDS

    for name in COMMANDS:
        package = importlib.import_module(f"captum_normxlogit._commands.{name.replace('-', '_')}")
        assert Path(str(package.__file__)).name == "__init__.py", f"{name} is not a package"
        assert callable(package.register)
    # no command logic beside the package's public modules (it moved into _commands/<name>/)
    top = {path.stem for path in Path(captum_normxlogit.__file__).parent.glob("*.py")}
    assert not top & {"_explain", "_demo", "_report"}


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert __version__ in capsys.readouterr().out


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--ig-steps", "0"])
    assert info.value.code == 2 and "at least 1" in capsys.readouterr().err


@pytest.mark.real
def test_demo_runs_on_the_real_models(tmp_path):
    page = tmp_path / "demo.html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "captum_normxlogit.cli",
            "demo",
            "--html",
            str(page),
            "--sentences",
            "2",
            "--ig-steps",
            "4",
            "--colour",
            "never",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gorgeous[" in result.stdout and "' Paris'" in result.stdout
    assert "Loading weights" not in result.stdout + result.stderr  # transformers' own bar stays out
    text = page.read_text(encoding="utf-8")
    assert "NormXLogit" in text and "LayerIG" in text and "gorgeous" in text


def test_python_m_captum_normxlogit_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "captum_normxlogit", "--version"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f"normxlogit {__version__}"


def _options(parser):
    return sorted(s for a in parser._actions for s in a.option_strings)


def test_prepare_has_the_options_of_resources_prepare_and_calls_the_same_code(monkeypatch):
    import captum_normxlogit.resources.__main__ as resources_main
    from captum_normxlogit.cli import _parser

    commands = _parser()._subparsers
    assert commands is not None
    choices = commands._group_actions[0].choices
    assert isinstance(choices, dict)
    sub = choices["prepare"]
    assert _options(sub) == _options(resources_main._parser())
    seen: list = []

    def prepare(args) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(resources_main, "prepare", prepare)
    assert main(["prepare", "--no-smollm2", "--quiet"]) == 0
    assert [(a.no_smollm2, a.force, a.quiet) for a in seen] == [(True, False, True)]


@pytest.mark.parametrize("command", [["explain", "some text"], ["demo"]])
def test_color_is_accepted_beside_colour(command):
    from captum_normxlogit.cli import _parser

    for spelling in ("--colour", "--color"):
        assert _parser().parse_args([*command, spelling, "never"]).colour == "never"


@pytest.mark.real
def test_prepare_reports_the_prepared_cache():
    result = subprocess.run(
        [sys.executable, "-m", "captum_normxlogit", "prepare", "--no-smollm2", "--quiet"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("cache: ") and "sentiment MiniLM: " in result.stdout
