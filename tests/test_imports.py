"""Imports stay cheap: each package is imported in a fresh interpreter and sys.modules checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests._helpers import run_python

HEAVY = ("joblib", "git", "mlflow", "submitit", "yaml", "cattrs", "sqlalchemy", "IPython")


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    return set(json.loads(run_python(code).stdout.splitlines()[-1]))


def _top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_import_core_loads_no_plugin_and_no_heavy_library() -> None:
    loaded = _loaded_after("import flexlock.core")
    assert set() == {
        m for m in loaded if m.startswith(("flexlock.cli", "flexlock.mlflow", "flexlock.slurm"))
    }
    assert set() == _top_level(loaded) & set(HEAVY)


@pytest.mark.needs_cli
def test_import_cli_loads_no_mlflow_submitit_joblib_or_git() -> None:
    loaded = _top_level(_loaded_after("import flexlock.cli"))
    assert set() == loaded & {"mlflow", "submitit", "joblib", "git"}


@pytest.mark.needs_mlflow
def test_import_flexlock_mlflow_does_not_import_mlflow() -> None:
    assert "mlflow" not in _top_level(_loaded_after("import flexlock.mlflow"))


@pytest.mark.needs_slurm
def test_import_flexlock_slurm_does_not_import_submitit() -> None:
    assert "submitit" not in _top_level(_loaded_after("import flexlock.slurm"))


def test_every_public_core_name_resolves() -> None:
    import flexlock.core

    assert [] == [name for name in flexlock.core.__all__ if not hasattr(flexlock.core, name)]


def test_import_core_loads_only_what_is_used() -> None:
    loaded = _loaded_after("from flexlock.core import runlock")
    assert set() == {
        m
        for m in loaded
        if m in {"flexlock.core._debug", "flexlock.core._verify", "flexlock.core._diff"}
    }


# What reading or printing a sheet must not pay for: the records and their converter.
RECORDS = {"attr", "attrs", "cattrs"}


def _sheet(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run_python(
        "from flexlock.core import runlock\n"
        f"with runlock({{'lr': 0.1}}, repos=[], runlock_path={str(run)!r}):\n    pass",
        cwd=tmp_path,
    )
    return run


def test_load_plain_builds_no_records(tmp_path: Path) -> None:
    run = _sheet(tmp_path)
    loaded = _loaded_after(
        f"from flexlock.core import load_plain; assert load_plain({str(run)!r})['config']"
    )
    assert set() == (_top_level(loaded) & RECORDS) | (loaded & {"flexlock.core._model"})


@pytest.mark.needs_cli
def test_flexlock_show_imports_no_records_and_no_converter(tmp_path: Path) -> None:
    run = _sheet(tmp_path)
    loaded = _loaded_after(
        f"from flexlock.cli._main import main\nassert main(['show', {str(run)!r}]) == 0"
    )
    assert set() == (_top_level(loaded) & RECORDS) | (loaded & {"flexlock.core._model"})


@pytest.mark.needs_cli
def test_clicfg_help_parses_no_yaml_and_builds_no_converter(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        "import sys, json, atexit, attrs\n"
        "from flexlock.cli import clicfg\n"
        "@attrs.define\nclass Config:\n    lr: float = 0.1\n    save_dir: str = 'out'\n"
        "atexit.register(lambda: sys.__stdout__.write(json.dumps(sorted(sys.modules))))\n"
        "@clicfg\ndef main(cfg: Config) -> None:\n    pass\n"
        "if __name__ == '__main__':\n    main()\n"
    )
    out = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out[out.rindex("[") :]))
    assert "--lr" in out or "lr" in out
    assert set() == (_top_level(loaded) & {"yaml", "cattrs", "difflib"}) | (
        loaded & {"flexlock.core._yaml", "flexlock.core._model", "flexlock.core._lockfile"}
    )
