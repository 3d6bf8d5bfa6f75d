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
        assert Path(package.__file__).name == "__init__.py", f"{name} is not a package"
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
        [sys.executable, "-m", "captum_normxlogit.cli", "demo", "--html", str(page), "--sentences", "2",
         "--ig-steps", "4", "--colour", "never"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gorgeous[" in result.stdout and "' Paris'" in result.stdout
    text = page.read_text(encoding="utf-8")
    assert "NormXLogit" in text and "LayerIG" in text and "gorgeous" in text
