"""`flexlock CMD` imports only CMD's registrar; `flexlock --help` imports none (issue 22)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from flexlock.cli._commands import COMMANDS
from flexlock.cli._main import main
from tests._helpers import REPO_ROOT, run_python

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

pytestmark = pytest.mark.needs_cli

_LOADED_COMMANDS = (
    "import sys, json\nfrom flexlock.cli._main import main\n"
    "try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
    "print(json.dumps(sorted(m for m in sys.modules if '_cmd_' in m or m.endswith('._cli'))))"
)


def _command_modules_after(argv: list[str]) -> list[str]:
    out = run_python(_LOADED_COMMANDS.format(argv=argv)).stdout
    return json.loads(out.splitlines()[-1])


def _declared_commands() -> dict[str, str]:
    declared = {}
    for part in ("cli", "mlflow"):
        project = tomllib.loads((REPO_ROOT / f"flexlock-{part}/pyproject.toml").read_text())
        declared |= project["project"]["entry-points"]["flexlock.commands"]
    return declared


def test_the_static_table_matches_the_declared_entry_points() -> None:
    assert _declared_commands() == {name: spec.target for name, spec in COMMANDS.items()}


@pytest.mark.needs_mlflow
def test_the_static_summaries_are_the_registrars_help() -> None:
    from flexlock.core import iter_plugins

    subparsers = argparse.ArgumentParser().add_subparsers()
    for _name, register in iter_plugins("flexlock.commands"):
        register(subparsers)
    helps = {action.dest: action.help for action in subparsers._choices_actions}
    assert helps == {name: spec.summary for name, spec in COMMANDS.items()}


def test_help_lists_every_command_and_imports_none() -> None:
    assert [] == _command_modules_after(["--help"])
    out = run_python(_LOADED_COMMANDS.format(argv=["--help"])).stdout
    for name in ("show", "verify", "push", "version"):
        assert f"    {name} " in out


def test_a_command_imports_only_its_own_registrar(tmp_path: Path) -> None:
    assert ["flexlock.cli._cmd_show"] == _command_modules_after(["show", str(tmp_path)])


def test_a_misspelt_command_gets_a_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["shwo"])
    assert 2 == exit_info.value.code
    assert "unknown command 'shwo'; did you mean 'show'?" in capsys.readouterr().err


def _bare_python(code: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    """Run `code` with no site-packages: only flexlock-core and flexlock-cli from src/."""
    prefix = f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}\n"
    return subprocess.run(
        [sys.executable, "-S", "-c", prefix + code], capture_output=True, text=True, check=False
    )


_CORE_CLI = (REPO_ROOT / "flexlock-core/src", REPO_ROOT / "flexlock-cli/src")


def test_a_command_of_an_uninstalled_distribution_names_its_pip_install() -> None:
    result = _bare_python("from flexlock.cli._main import main; main(['mlflow', 'ls'])", *_CORE_CLI)
    assert 2 == result.returncode
    assert (
        "command 'mlflow' is provided by flexlock-mlflow, which is not installed: "
        "pip install flexlock-mlflow"
    ) in result.stderr


def test_help_says_how_to_get_the_missing_plugins() -> None:
    result = _bare_python("from flexlock.cli._main import main; main(['--help'])", *_CORE_CLI)
    assert 0 == result.returncode
    assert "not installed:" in result.stdout
    assert "pip install flexlock-mlflow" in result.stdout
    assert "pip install flexlock-slurm" in result.stdout
    assert "    mlflow " not in result.stdout.partition("not installed:")[0]


def test_a_third_party_command_is_listed_unloaded_and_runs(tmp_path: Path) -> None:
    (tmp_path / "hello_cmd.py").write_text(
        "LOADED = True\n"
        "def register(subparsers):\n"
        "    p = subparsers.add_parser('hello', help='say hello')\n"
        "    p.set_defaults(handler=lambda args: print('hello from a plugin') or 0)\n"
    )
    info = tmp_path / "hello_cmd-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hello-cmd\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[flexlock.commands]\nhello = hello_cmd:register\n")
    listing = run_python(
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "from flexlock.cli._main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n"
        "    pass\nprint('hello_cmd' in sys.modules)"
    ).stdout
    assert "    hello     (from hello-cmd)" in listing
    assert listing.rstrip().endswith("False")
    ran = run_python(
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "from flexlock.cli._main import main; sys.exit(main(['hello']))"
    )
    assert "hello from a plugin" in ran.stdout


def test_help_imports_no_metadata_scanner_typing_or_shutil() -> None:
    # importlib.metadata, typing and shutil (with its compression modules) were the
    # largest imports of `flexlock --help`, together more than a bare interpreter's start.
    code = (
        "import sys, io\nfrom flexlock.cli._main import main\nsys.stdout = io.StringIO()\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "sys.__stdout__.write(' '.join(sorted(sys.modules)))"
    )
    loaded = set(run_python(code).stdout.split())
    assert set() == loaded & {"importlib.metadata", "typing", "shutil", "importlib.util"}


def test_a_clicfg_scripts_help_does_not_import_the_runner(tmp_path: Path) -> None:
    # The runner (socket, hashing, run sheets) is for running; --help only builds a parser.
    script = tmp_path / "app.py"
    script.write_text(
        "import atexit, sys\n"
        "atexit.register(lambda: print('runner loaded:', 'flexlock.cli._runner' in sys.modules))\n"
        "import attrs\nfrom flexlock.cli import clicfg\n\n"
        "@attrs.define\nclass Config:\n    lr: float = 0.1\n\n"
        "@clicfg\ndef main(cfg: Config) -> None:\n    pass\n\n"
        "if __name__ == '__main__':\n    main(Config())\n"
    )
    result = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, check=True
    )
    assert "--lr" in result.stdout or "lr" in result.stdout
    assert result.stdout.rstrip().endswith("runner loaded: False")
