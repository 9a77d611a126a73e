"""Imports stay cheap: each package is imported in a fresh interpreter and sys.modules checked."""

from __future__ import annotations

import json

import pytest

from tests._helpers import run_python

HEAVY = ("joblib", "git", "mlflow", "submitit", "yaml", "cattrs", "sqlalchemy", "IPython")


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    return set(json.loads(run_python(code).stdout))


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
