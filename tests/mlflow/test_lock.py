"""`mlflow_lock` against a real local SQLite tracking store (a per-test copy of a template)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from flexlock.core import ConfigError, LockFileError
from flexlock.mlflow import (
    active_run_for,
    active_runs,
    logical_run_key,
    mlflow_lock,
    reconcile,
    runs_for,
)
from flexlock.mlflow._sheet import TRUNCATION_MARKER
from tests.mlflow.conftest import SheetFactory, active_run_by_hand, full_sheet_fields

pytestmark = pytest.mark.needs_mlflow


def _run(run_id: str) -> mlflow.entities.Run:
    return MlflowClient().get_run(run_id)


def test_config_is_logged_as_flattened_params(mlflow_uri: str, make_run: SheetFactory) -> None:
    save_dir = make_run(config={"lr": 0.1, "model": {"depth": 3, "layers": [{"dim": 8}]}})
    with mlflow_lock(save_dir) as run:
        pass
    assert _run(run.run_id).data.params == {
        "lr": "0.1",
        "model.depth": "3",
        "model.layers.0.dim": "8",
    }


def test_run_is_tagged_with_logical_run_id_key_sheet_id_and_active_status(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    save_dir = make_run(id="sha256:feed")
    with mlflow_lock(save_dir) as run:
        pass
    tags = _run(run.run_id).data.tags
    assert {
        "logical_run_id": str(save_dir.resolve()),
        "logical_run_key": logical_run_key(save_dir),
        "flexlock.id": "sha256:feed",
        "logical_status": "active",
    }.items() <= tags.items()


def test_code_commits_and_data_hashes_become_tags(
    mlflow_uri: str, make_run: SheetFactory, tmp_path: Path
) -> None:
    save_dir = make_run(**full_sheet_fields(tmp_path / "project"))
    with mlflow_lock(save_dir) as run:
        pass
    tags = _run(run.run_id).data.tags
    assert {
        "mlflow.source.git.commit": "a" * 40,
        "mlflow.source.git.repoURL": "https://example.com/lab/project.git",
        "flexlock.code.project.commit": "a" * 40,
        "flexlock.code.project.snapshot": "c" * 40,
        "flexlock.code.project.dirty": "true",
        "flexlock.data.data/train.csv": "sha256:" + "d" * 64,
        "mlflow.user": "alice",
    }.items() <= tags.items()


def test_run_lock_is_logged_as_an_artifact_byte_for_byte(
    mlflow_uri: str, make_run: SheetFactory, tmp_path: Path
) -> None:
    save_dir = make_run()
    with mlflow_lock(save_dir) as run:
        pass
    downloaded = mlflow.artifacts.download_artifacts(
        run_id=run.run_id, artifact_path="run.lock", dst_path=str(tmp_path / "download")
    )
    assert Path(downloaded).read_bytes() == (save_dir / "run.lock").read_bytes()


def test_fluent_logging_inside_the_block_goes_to_the_new_run(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    save_dir = make_run()
    (save_dir / "out.txt").write_text("result\n")
    with mlflow_lock(save_dir) as run:
        mlflow.log_metric("acc", 0.9)
        mlflow.log_artifact(str(save_dir / "out.txt"))
    assert _run(run.run_id).data.metrics == {"acc": 0.9}
    assert "out.txt" in {item.path for item in MlflowClient().list_artifacts(run.run_id)}


def test_no_fluent_run_is_left_active_after_the_block(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    with mlflow_lock(make_run()):
        pass
    assert mlflow.active_run() is None


def test_callers_own_active_run_is_active_again_after_the_block(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    with mlflow.start_run() as outer:
        with mlflow_lock(make_run()) as run:
            mlflow.log_metric("inner", 1.0)
        mlflow.log_metric("outer", 2.0)
        assert mlflow.active_run().info.run_id == outer.info.run_id
    assert (_run(run.run_id).data.metrics, _run(outer.info.run_id).data.metrics) == (
        {"inner": 1.0},
        {"outer": 2.0},
    )


def test_run_ends_finished(mlflow_uri: str, make_run: SheetFactory) -> None:
    with mlflow_lock(make_run()) as run:
        pass
    assert _run(run.run_id).info.status == "FINISHED"


def test_missing_run_lock_is_an_error_naming_the_path_and_logs_nothing(
    mlflow_uri: str, tmp_path: Path
) -> None:
    save_dir = tmp_path / "results" / "empty"
    save_dir.mkdir(parents=True)
    with pytest.raises(LockFileError, match=r"results/empty/run\.lock: no run\.lock"):  # noqa: SIM117
        with mlflow_lock(save_dir):
            pass
    assert MlflowClient().search_runs(["0"]) == []


def test_missing_save_dir_is_an_error(mlflow_uri: str, tmp_path: Path) -> None:
    with (
        pytest.raises(LockFileError, match="no such run directory"),
        mlflow_lock(tmp_path / "nope"),
    ):
        pass


def test_unsucceeded_run_is_refused_with_the_option_to_log_anyway(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    save_dir = make_run(status="failed")
    with pytest.raises(LockFileError, match="require_success=False"), mlflow_lock(save_dir):
        pass
    assert MlflowClient().search_runs(["0"]) == []


def test_require_success_false_logs_a_failed_run_with_its_sheet_status(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    with mlflow_lock(make_run(status="failed"), require_success=False) as run:
        pass
    assert _run(run.run_id).data.tags["flexlock.sheet_status"] == "failed"


def test_require_success_false_logs_a_dir_without_sheet_by_its_logical_id(
    mlflow_uri: str, tmp_path: Path
) -> None:
    save_dir = tmp_path / "old-run"
    save_dir.mkdir()
    with mlflow_lock(save_dir, require_success=False) as run:
        pass
    tags = _run(run.run_id).data.tags
    assert (tags["logical_run_key"], tags["flexlock.sheet_status"], tags["logical_status"]) == (
        logical_run_key(save_dir),
        "missing",
        "active",
    )


def test_relogging_deprecates_the_previous_run_and_points_to_its_successor(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    save_dir = make_run()
    with mlflow_lock(save_dir) as first:
        pass
    with mlflow_lock(save_dir) as second:
        pass
    tags = _run(first.run_id).data.tags
    assert (tags["logical_status"], tags["superseded_by"]) == ("deprecated", second.run_id)


def test_the_same_dir_through_another_spelling_supersedes_too(
    mlflow_uri: str, make_run: SheetFactory, tmp_path: Path
) -> None:
    save_dir = make_run()
    with mlflow_lock(save_dir) as first:
        pass
    with mlflow_lock("results/../results/train"):
        pass
    assert _run(first.run_id).data.tags["logical_status"] == "deprecated"


def test_failing_block_ends_run_failed_and_keeps_the_previous_run_active(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    save_dir = make_run()
    with mlflow_lock(save_dir) as good:
        pass
    with pytest.raises(ZeroDivisionError), mlflow_lock(save_dir) as bad:
        _ = 1 / 0
    bad_run = _run(bad.run_id)
    assert (
        bad_run.info.status,
        bad_run.data.tags["logical_status"],
        _run(good.run_id).data.tags["logical_status"],
    ) == (
        "FAILED",
        "failed",
        "active",
    )


def test_failing_block_records_the_error_on_the_run(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    with pytest.raises(ValueError, match="bad diagnosis"), mlflow_lock(make_run()) as run:
        raise ValueError("bad diagnosis")
    assert _run(run.run_id).data.tags["flexlock.error"] == "ValueError: bad diagnosis"


def test_interrupted_block_ends_run_killed(mlflow_uri: str, make_run: SheetFactory) -> None:
    with pytest.raises(KeyboardInterrupt), mlflow_lock(make_run()) as run:
        raise KeyboardInterrupt
    assert _run(run.run_id).info.status == "KILLED"


def test_more_params_than_one_batch_holds_are_all_logged(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    config = {f"key{index:03d}": index for index in range(250)}
    with mlflow_lock(make_run(config=config)) as run:
        pass
    assert len(_run(run.run_id).data.params) == 250


def test_long_param_value_is_truncated_with_the_marker(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    with mlflow_lock(make_run(config={"prompt": "p" * 10_000})) as run:
        pass
    value = _run(run.run_id).data.params["prompt"]
    assert (len(value), value.endswith(TRUNCATION_MARKER)) == (6000, True)


def test_keys_that_collide_after_sanitising_are_both_logged(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    with mlflow_lock(make_run(config={"a[0]": 1, "a_0_": 2})) as run:
        pass
    assert sorted(_run(run.run_id).data.params.values()) == ["1", "2"]


def test_user_tags_are_added_to_the_run(mlflow_uri: str, make_run: SheetFactory) -> None:
    with mlflow_lock(make_run(), tags={"stage": "diagnosis"}, run_name="diag") as run:
        pass
    logged = _run(run.run_id)
    assert (logged.data.tags["stage"], logged.info.run_name) == ("diagnosis", "diag")


def test_user_tag_named_like_the_state_tags_is_refused(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    with pytest.raises(ConfigError, match="status"), mlflow_lock(make_run(), tags={"status": "x"}):
        pass


def test_default_run_name_is_the_save_dirs_last_two_folders(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    # Issue 23: `model.C=10` named an SVC run and a logistic-regression run alike.
    with mlflow_lock(make_run("svc/model.C=10")) as svc:
        pass
    with mlflow_lock(make_run("logreg/model.C=10")) as logreg:
        pass
    names = (_run(svc.run_id).info.run_name, _run(logreg.run_id).info.run_name)
    assert names == ("svc/model.C=10", "logreg/model.C=10")


def test_start_and_end_time_are_the_sheets_not_the_logging_calls(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    # Issue 23: the UI showed "Duration 98ms", the time of the logging call.
    with mlflow_lock(make_run()) as run:  # created 12:00:00Z, finished 12:05:00Z
        pass
    info = _run(run.run_id).info
    start = 1795694400000  # 2026-11-26T12:00:00Z in epoch ms
    assert (info.start_time, info.end_time) == (start, start + 5 * 60 * 1000)


def test_relogging_the_same_sheet_keeps_the_newest_log_active(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    # Both logs carry the sheet's start time: supersession orders them by logging time.
    save_dir = make_run()
    logged = []
    for _ in range(4):
        with mlflow_lock(save_dir) as run:
            pass
        logged.append(run.run_id)
    statuses = [_run(run_id).data.tags["logical_status"] for run_id in logged]
    assert statuses == ["deprecated", "deprecated", "deprecated", "active"]


def test_dirty_runs_snapshot_commit_is_a_tag_beside_the_git_source_tags(
    mlflow_uri: str, make_run: SheetFactory, tmp_path: Path
) -> None:
    # Issue 23: mlflow.source.git.commit is HEAD; nothing pointed to the code that ran.
    with mlflow_lock(make_run(**full_sheet_fields(tmp_path / "project"))) as run:
        pass
    tags = _run(run.run_id).data.tags
    assert (tags["mlflow.source.git.commit"], tags["flexlock.git.snapshot"]) == ("a" * 40, "c" * 40)


def test_named_experiment_is_created_on_first_use(mlflow_uri: str, make_run: SheetFactory) -> None:
    with mlflow_lock(make_run(), experiment="diagnosis") as run:
        pass
    assert MlflowClient().get_experiment_by_name("diagnosis").experiment_id == run.experiment_id


def test_current_fluent_experiment_is_the_default(mlflow_uri: str, make_run: SheetFactory) -> None:
    experiment = mlflow.set_experiment("chosen")
    with mlflow_lock(make_run()) as run:
        pass
    assert run.experiment_id == experiment.experiment_id


def test_each_experiment_keeps_its_own_active_run_of_a_save_dir(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    save_dir = make_run()
    with mlflow_lock(save_dir, experiment="train") as in_train:
        pass
    with mlflow_lock(save_dir, experiment="eval"):
        pass
    assert _run(in_train.run_id).data.tags["logical_status"] == "active"


def test_deleted_experiment_is_refused_with_the_restore_command(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    client = MlflowClient()
    client.delete_experiment(client.create_experiment("gone"))
    with (
        pytest.raises(ConfigError, match="mlflow experiments restore"),
        mlflow_lock(make_run(), experiment="gone"),
    ):
        pass


def test_next_writer_repairs_two_actives_left_by_a_crashed_writer(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    save_dir = make_run()
    with mlflow_lock(save_dir) as first:
        pass
    crashed = active_run_by_hand(save_dir)
    with mlflow_lock(save_dir) as last:
        pass
    statuses = {run.info.run_id: run.data.tags["logical_status"] for run in runs_for(save_dir)}
    assert statuses == {first.run_id: "deprecated", crashed: "deprecated", last.run_id: "active"}


def test_reconcile_keeps_only_the_newest_active_run(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    save_dir = make_run()
    with mlflow_lock(save_dir):
        pass
    crashed = active_run_by_hand(save_dir)
    assert reconcile(save_dir) == crashed
    assert [
        run.info.run_id for run in runs_for(save_dir) if run.data.tags["logical_status"] == "active"
    ] == [crashed]


def test_active_run_for_returns_the_newest_while_two_are_active(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    save_dir = make_run()
    with mlflow_lock(save_dir):
        pass
    crashed = active_run_by_hand(save_dir)
    found = active_run_for(save_dir)
    assert found is not None
    assert found.info.run_id == crashed


def test_delete_superseded_soft_deletes_the_deprecated_runs_restorably(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    # Issue 23: 3 re-logs of a run showed 3 rows in the UI's default view.
    save_dir = make_run()
    with mlflow_lock(save_dir) as first:
        pass
    with mlflow_lock(save_dir, delete_superseded=True) as second:
        pass
    client = MlflowClient()
    visible = [run.info.run_id for run in client.search_runs(["0"])]
    assert visible == [second.run_id]
    assert client.get_run(first.run_id).info.lifecycle_stage == "deleted"
    client.restore_run(first.run_id)
    assert _run(first.run_id).data.tags["logical_status"] == "deprecated"


def test_superseded_runs_stay_visible_by_default(mlflow_uri: str, make_run: SheetFactory) -> None:
    save_dir = make_run()
    with mlflow_lock(save_dir):
        pass
    with mlflow_lock(save_dir):
        pass
    assert len(MlflowClient().search_runs(["0"])) == 2


def test_runs_logged_with_the_old_state_tag_are_found_and_superseded(
    mlflow_uri: str, make_run: SheetFactory
) -> None:
    # A store written by flexlock-mlflow <= 0.11: the state was in `tags.status`.
    save_dir = make_run()
    old = active_run_by_hand(save_dir, state_tag="status")
    found = active_run_for(save_dir)
    assert found is not None
    assert (found.info.run_id, len(active_runs())) == (old, 1)
    with mlflow_lock(save_dir) as new:
        pass
    tags = _run(old).data.tags
    # demoted under both names, so an older flexlock sharing the store agrees
    assert (tags["logical_status"], tags["status"]) == ("deprecated", "deprecated")
    assert [run.info.run_id for run in active_runs()] == [new.run_id]
    assert "status" not in _run(new.run_id).data.tags
