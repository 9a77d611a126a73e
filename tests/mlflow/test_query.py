"""Active-run queries: the filter helper, `active_runs` and the save dir → run lookup."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mlflow import MlflowClient

from flexlock.core import ConfigError
from flexlock.mlflow import active_filter, active_run_for, active_runs, mlflow_lock
from tests._helpers import run_python
from tests.mlflow.conftest import SheetFactory

pytestmark = pytest.mark.needs_mlflow


def test_active_filter_uses_the_logical_status_tag() -> None:
    assert active_filter() == "tags.logical_status = 'active'"


def test_active_filter_ands_the_user_filter() -> None:
    expected = "tags.logical_status = 'active' and params.lr = '0.1'"
    assert active_filter("params.lr = '0.1'") == expected


def test_bare_status_compared_with_a_flexlock_state_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match=re.escape("write `tags.logical_status = 'deprecated'`")):
        active_filter("status = 'deprecated'")


def test_the_old_state_tag_in_a_filter_is_refused_with_the_new_name() -> None:
    with pytest.raises(ConfigError, match=re.escape("write `tags.logical_status = 'active'`")):
        active_filter("tags.status = 'active' and params.lr = '0.1'")


def test_mlflow_run_status_filters_are_allowed() -> None:
    assert active_filter("attributes.status = 'FINISHED'").endswith(
        "attributes.status = 'FINISHED'"
    )


def test_active_runs_lists_one_run_per_logical_run(mlflow_uri: str, make_run: SheetFactory) -> None:
    first, second = make_run("a"), make_run("b")
    for save_dir in (first, first, second):
        with mlflow_lock(save_dir):
            pass
    runs = active_runs()
    assert sorted(run.data.tags["logical_run_id"] for run in runs) == [
        str(first.resolve()),
        str(second.resolve()),
    ]


def test_active_runs_applies_the_user_filter(mlflow_uri: str, make_run: SheetFactory) -> None:
    with mlflow_lock(make_run("a", config={"lr": 0.1})):
        pass
    with mlflow_lock(make_run("b", config={"lr": 0.2})) as wanted:
        pass
    assert [run.info.run_id for run in active_runs(filter="params.lr = '0.2'")] == [wanted.run_id]


def test_active_runs_searches_the_named_experiment(mlflow_uri: str, make_run: SheetFactory) -> None:
    with mlflow_lock(make_run("a")):
        pass
    with mlflow_lock(make_run("b"), experiment="other") as wanted:
        pass
    assert [run.info.run_id for run in active_runs(experiment="other")] == [wanted.run_id]


def test_active_runs_of_an_unknown_experiment_is_an_error(mlflow_uri: str) -> None:
    with pytest.raises(ConfigError, match="no MLflow experiment named 'typo'"):
        active_runs(experiment="typo")


def test_active_run_for_finds_the_current_run_of_a_save_dir(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    save_dir = make_run()
    with mlflow_lock(save_dir):
        pass
    with mlflow_lock(save_dir) as current:
        pass
    found = active_run_for(save_dir)
    assert found is not None
    assert found.info.run_id == current.run_id


def test_active_run_for_a_never_logged_dir_is_none(mlflow_uri: str, tmp_path: Path) -> None:
    assert active_run_for(tmp_path) is None


def test_active_run_for_falls_back_to_the_newest_deprecated_run_when_the_active_is_deleted(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    save_dir = make_run()
    with mlflow_lock(save_dir) as older:
        pass
    with mlflow_lock(save_dir) as newer:
        pass
    MlflowClient().delete_run(newer.run_id)
    found = active_run_for(save_dir)
    assert found is not None
    assert found.info.run_id == older.run_id


def test_active_run_for_ignores_a_failed_log(mlflow_uri: str, make_run: SheetFactory) -> None:
    save_dir = make_run()
    with pytest.raises(RuntimeError), mlflow_lock(save_dir):
        raise RuntimeError
    assert active_run_for(save_dir) is None


def test_importing_the_plugin_modules_does_not_import_mlflow() -> None:
    code = (
        "import sys, flexlock.mlflow._lock, flexlock.mlflow._query, flexlock.mlflow._cli;"
        "print('mlflow' in sys.modules)"
    )
    assert run_python(code).stdout.strip() == "False"
